"""``pairrm.Blender``: llm_blender's ``Blender`` (its PairRM ranker part) over the Rust engine."""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar, Union

import numpy as np

from . import _hub, _upstream, _validate
from ._pairrm import Engine, hub_cache_dir
from ._progress import make_bar

__all__ = ["Blender", "RankerNotLoadedError"]

logger = logging.getLogger("pairrm")

T = TypeVar("T")

#: ``rank`` / ``rank_with_ref`` keyword arguments that set the token limits of one call.
_RANK_OPTIONS = ("source_max_length", "candidate_max_length")
_SAMPLING_MODES = ("top_k_sampling", "top_p_sampling", None)
_CMP_TYPES = ("bubble", "full")


class RankerNotLoadedError(RuntimeError, AttributeError):
    """A method that needs the ranker was called before :meth:`Blender.loadranker`.

    A ``RuntimeError``, and also an ``AttributeError``: what llm_blender raises there (``'Blender'
    object has no attribute 'ranker'``), so handlers written for either catch it.
    """


class Blender:
    """PairRM, the pairwise reward model of LLM-Blender, with ``llm_blender.Blender``'s methods.

    Change ``import llm_blender`` / ``llm_blender.Blender()`` into ``import pairrm`` /
    ``pairrm.Blender()``; the methods take the same arguments and return the same types
    (numpy arrays, lists of str), with the same numbers. No torch or transformers is needed.

    Args:
        use_tqdm: show progress bars on long calls (tqdm if installed, else a plain bar on a
            terminal's stderr); ``rank(..., disable_tqdm=True)`` turns one call's bar off.
        seed: seed of the candidate order of ``pairrm_cmp_type="bubble"`` in
            :meth:`get_best_of_n` / :meth:`get_worst_of_n` (the reference's order is unseeded).

    A ``Blender`` is safe to use from several threads. Build one per process: it cannot be
    pickled, and one inherited through ``fork`` refuses to run (see :meth:`loadranker`).
    """

    def __init__(self, *, use_tqdm: bool = True, seed: int = 0) -> None:
        self.use_tqdm = use_tqdm
        self.seed = seed
        self._engine: Optional[Engine] = None
        self._pid: Optional[int] = None
        # How the engine was loaded, to load it again with other token limits (rank's
        # source_max_length / candidate_max_length), and the last such copy.
        self._load_args: Dict[str, Any] = {}
        self._variant: Optional[Engine] = None
        self._variant_lock = threading.Lock()

    def __repr__(self) -> str:
        loaded = repr(self._engine.model_id) if self._engine is not None else "no ranker loaded"
        return f"pairrm.Blender({loaded})"

    def __reduce__(self) -> Any:
        raise TypeError(
            "a pairrm.Blender cannot be pickled: build one in each worker process "
            "(e.g. in a multiprocessing Pool initializer or a Ray actor's __init__), see docs/python.md"
        )

    # -- loading -----------------------------------------------------------------------------

    def loadranker(self, ranker_path: Union[str, "os.PathLike[str]"], device: Any = None, **kwargs: Any) -> None:
        """Loads PairRM from a local directory or a Hugging Face hub id.

        Args:
            ranker_path: a checkpoint directory (LLM-Blender's layout, e.g. a snapshot of
                ``llm-blender/PairRM``, or the PairRM-hf layout), or a hub id such as
                ``"llm-blender/PairRM"`` looked up in the Hugging Face cache. A directory
                ``<cache_dir>/<ranker_path>`` as llm_blender downloads it is used too. Missing hub
                files are downloaded (unless ``HF_HUB_OFFLINE`` is set): with ``huggingface_hub``
                when it is installed, else with pairrm's built-in downloader (same cache layout,
                same ``HF_*`` variables).
            device: accepted for compatibility: ``None`` or ``"cpu"`` (or a ``torch.device`` of
                the CPU). pairrm runs on the CPU; any other device is ignored with a warning.
            **kwargs: ``cache_dir`` (the hub cache; default: ``HF_HUB_CACHE``, ``HF_HOME/hub`` or
                ``~/.cache/huggingface/hub``), ``revision`` (hub branch, tag or commit),
                ``source_maxlength`` / ``candidate_maxlength`` (token limits, default: the
                checkpoint's), ``threads`` (engine threads; default or 0: one per core — use 1 or 2
                per worker when several processes share a machine), ``max_batch_tokens`` (the
                engine's batch budget), ``dtype`` (weight storage: ``"f32"``, exact, the default;
                ``"f16"``: about 0.6x the memory, logits within 1e-2; ``"bf16"``), ``precision``
                (the arithmetic: ``"f32"``, exact, the default; ``"bf16"``: about 2x faster and
                half the memory, within a measured bound of f32 — see docs/precision.md; ``"int8"``),
                ``download`` (False: never download). llm_blender's other ``RankerConfig`` fields are accepted
                too: those describing the model (``ranker_type``, ``model_type``, ``model_name``,
                ``n_tasks``, ``load_checkpoint``) come from the checkpoint's config.json (a value
                that differs from PairRM's is ignored with a warning); training options and
                ``fp16`` change nothing on the CPU, in llm_blender either.

        Raises:
            TypeError: an unknown keyword argument.
            pairrm.NotInCacheError: a hub id missing from the cache (a ``FileNotFoundError``).
            FileNotFoundError / OSError: a checkpoint file cannot be read.
            ValueError: ``ranker_path`` is neither a directory nor a hub id, or the checkpoint is
                invalid.
        """
        path = os.fspath(ranker_path)
        if not isinstance(path, str):
            raise TypeError(f"ranker_path must be a str or path, not {type(ranker_path).__name__}")
        options = _upstream.loadranker_options(path, kwargs)
        if device is not None and str(device) != "cpu":
            warnings.warn(f"pairrm runs on the CPU; device={str(device)!r} is ignored", stacklevel=2)
        cache_dir = options.get("cache_dir")
        cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        if not os.path.isdir(path):
            legacy_root = cache_dir or hub_cache_dir()
            if legacy_root and (Path(legacy_root) / path / "config.json").is_file():
                path = str(Path(legacy_root) / path)
        sizes = {}
        for key in ("source_maxlength", "candidate_maxlength", "max_batch_tokens"):
            if options.get(key) is not None:
                sizes[key] = _validate.positive_int(options[key], key)
        threads = options.get("threads")
        load_args = dict(
            revision=options.get("revision"),
            cache_dir=cache_dir,
            download=_hub.downloader() if options.get("download", True) else False,
            threads=0 if threads is None else _validate.non_negative_int(threads, "threads"),
            max_batch_tokens=sizes.get("max_batch_tokens"),
            dtype=options.get("dtype", "f32"),
            precision=options.get("precision", "f32"),
        )
        engine = Engine(
            path,
            source_max_length=sizes.get("source_maxlength"),
            candidate_max_length=sizes.get("candidate_maxlength"),
            **load_args,
        )
        with self._variant_lock:
            self._engine, self._pid = engine, os.getpid()
            self._load_args, self._variant = dict(load_args, model=path), None
        logger.info(
            "pairrm: loaded ranker %s (%s layout, %d threads, precision %s)",
            path,
            engine.layout,
            engine.threads,
            engine.precision,
        )

    @property
    def engine(self) -> Engine:
        """The loaded :class:`pairrm.Engine` (the low-level API).

        Raises:
            RankerNotLoadedError: no ranker is loaded yet (a ``RuntimeError`` and an
                ``AttributeError``).
        """
        if self._engine is None:
            raise RankerNotLoadedError("no ranker loaded: call loadranker('llm-blender/PairRM') first")
        if self._pid != os.getpid():
            raise RuntimeError(
                "this Blender was loaded in another process and inherited through fork; its engine threads "
                "do not exist here. Build a Blender in each worker process (see docs/python.md)"
            )
        return self._engine

    def _engine_with_limits(self, limits: Dict[str, Any], where: str) -> Engine:
        """The engine for one call's ``source_max_length`` / ``candidate_max_length`` (llm_blender
        reads them per call; ``None`` or 0 mean the loaded limits). Other limits than the loaded
        ones need the model loaded again with them: that copy is kept for the next call (one at
        a time), with a warning, since it costs the load time and memory of a second model."""
        engine = self.engine
        wanted = []
        for key, loaded in (
            ("source_max_length", engine.source_max_length),
            ("candidate_max_length", engine.candidate_max_length),
        ):
            value = limits.get(key)
            wanted.append(loaded if value is None or value == 0 else _validate.positive_int(value, key))
        if tuple(wanted) == (engine.source_max_length, engine.candidate_max_length):
            return engine
        with self._variant_lock:
            variant = self._variant
            if variant is None or (variant.source_max_length, variant.candidate_max_length) != tuple(wanted):
                warnings.warn(
                    f"{where}(source_max_length={wanted[0]}, candidate_max_length={wanted[1]}): the loaded "
                    f"limits are {engine.source_max_length} and {engine.candidate_max_length}; pairrm loads the "
                    "model again with these limits (kept for the next call, at the cost of a second copy in "
                    "memory). Load them once with loadranker(..., source_maxlength=..., candidate_maxlength=...)",
                    UserWarning,
                    stacklevel=3,
                )
                args = dict(self._load_args)
                variant = Engine(args.pop("model"), source_max_length=wanted[0], candidate_max_length=wanted[1], **args)
                self._variant = variant
        return variant

    def _run(self, desc: str, show: bool, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, progress=bar, **kwargs)`` with a progress bar titled ``desc``."""
        bar = make_bar(desc, show and self.use_tqdm)
        try:
            return fn(*args, progress=bar, **kwargs)
        finally:
            if bar is not None:
                bar.close()

    # -- ranking -----------------------------------------------------------------------------

    def rank(
        self,
        inputs: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]] = None,
        return_scores: bool = False,
        batch_size: int = 8,
        disable_tqdm: bool = False,
        **rank_kwargs: Any,
    ) -> np.ndarray:
        """Ranks the candidates of each input by the full comparison matrix.

        Args:
            inputs: the input (prompt) texts.
            candidates: the candidate texts of each input (the same number for every input).
            instructions: optional texts prepended to each input (no separator, as llm_blender).
            return_scores: return the scores (higher is better) instead of the ranks.
            batch_size: accepted for compatibility; the engine batches by a token budget and
                results never depend on batching.
            disable_tqdm: no progress bar for this call.
            **rank_kwargs: ``source_max_length`` / ``candidate_max_length``: this call's token
                limits (``None`` or 0: the loaded ones). Limits other than the loaded ones load
                the model a second time (with a warning; better: :meth:`loadranker`'s
                ``source_maxlength`` / ``candidate_maxlength``). Any other keyword is ignored
                with a warning, as llm_blender ignores it.

        Returns:
            ``int32`` ranks of shape ``[len(inputs), n]`` (1 is best; equal scores share the
            better rank), or ``float32`` scores of that shape.
        """
        engine = self.engine  # raises first when no ranker is loaded, as llm_blender
        inputs = _validate.strings(inputs, "inputs")
        candidates = _validate.string_lists(candidates, "candidates")
        instructions = _validate.optional_strings(instructions, "instructions")
        _validate.same_length(("inputs", inputs), ("candidates", candidates), ("instructions", instructions))
        n = _validate.common_count(candidates)
        extra = sorted(set(rank_kwargs) - set(_RANK_OPTIONS))
        if extra:
            warnings.warn(
                f"rank(): keyword argument(s) {', '.join(extra)} ignored (llm_blender ignores them too; "
                f"rank reads only {' and '.join(_RANK_OPTIONS)})",
                UserWarning,
                stacklevel=2,
            )
        engine = self._engine_with_limits(rank_kwargs, "rank")
        scores, ranks = self._run("Ranking candidates", not disable_tqdm, engine.rank, inputs, candidates, instructions)
        if return_scores:
            return np.asarray(scores, dtype=np.float32).reshape(len(inputs), n)
        return np.asarray(ranks, dtype=np.int32).reshape(len(inputs), n)

    def rank_with_ref(
        self,
        inputs: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]] = None,
        return_scores: bool = False,
        batch_size: int = 8,
        ref_mode: str = "longest",
        ref_candidates: Optional[Sequence[str]] = None,
        **rank_kwargs: Any,
    ) -> np.ndarray:
        """Ranks each candidate by comparing it with a reference candidate.

        The score of candidate ``c`` is ``-compare(reference, c, mode=mode)``, so higher is
        better.

        Args:
            ref_mode: which candidate is the reference: ``"longest"``, ``"shortest"``,
                ``"median_length"``, ``"first"`` or ``"last"`` (lengths in characters; the first
                of equals).
            ref_candidates: one reference text per input; overrides ``ref_mode``.
            **rank_kwargs: as llm_blender, passed on to :meth:`compare`: ``mode`` (default
                ``"[A,B]+[B,A]"``; any value other than ``"[A,B]"`` / ``"[B,A]"`` compares both
                orders, with a warning unless it is ``"[A,B]+[B,A]"`` — LLM-Blender's README
                passes ``mode="longest"``, which picks nothing: ``ref_mode`` does);
                ``disable_tqdm``; and ``source_max_length`` / ``candidate_max_length`` as in
                :meth:`rank`.
            Other arguments as in :meth:`rank`.

        Returns:
            ``int32`` ranks of shape ``[len(inputs), n]``, or ``float64`` scores (the
            reference's dtype).

        Raises:
            TypeError: another keyword argument (llm_blender's ``compare`` refuses it too).
        """
        engine = self.engine  # raises first when no ranker is loaded, as llm_blender
        options = dict(rank_kwargs)
        mode = options.pop("mode", _upstream.BOTH_ORDERS)
        disable_tqdm = options.pop("disable_tqdm", False)
        extra = sorted(set(options) - set(_RANK_OPTIONS))
        if extra:
            raise TypeError(
                f"rank_with_ref() got unexpected keyword argument(s) {', '.join(extra)}; accepted: mode, "
                f"disable_tqdm, {', '.join(_RANK_OPTIONS)} (llm_blender passes them to compare())"
            )
        inputs = _validate.strings(inputs, "inputs")
        candidates = _validate.string_lists(candidates, "candidates")
        instructions = _validate.optional_strings(instructions, "instructions")
        references = _validate.optional_strings(ref_candidates, "ref_candidates")
        _validate.same_length(
            ("inputs", inputs),
            ("candidates", candidates),
            ("instructions", instructions),
            ("ref_candidates", references),
        )
        n = _validate.common_count(candidates)
        if references is None and ref_mode not in _upstream.REF_MODES:
            raise ValueError(f"Unknown ref_mode: {ref_mode!r}; expected longest, shortest, median_length, first or last")
        mode = _upstream.compare_mode(mode, "rank_with_ref")
        engine = self._engine_with_limits(options, "rank_with_ref")
        if mode == _upstream.BOTH_ORDERS:
            scores, ranks = self._run(
                "Ranking with reference",
                not disable_tqdm,
                engine.rank_with_ref,
                inputs,
                candidates,
                instructions,
                reference=ref_mode,
                references=references,
            )
        else:
            # One pass per candidate: compare(reference, candidate) in that mode, as llm_blender.
            if references is None:
                references = [_upstream.pick_reference(row, ref_mode) for row in candidates]
            pairs = [(i, ref, c) for i, (ref, row) in enumerate(zip(references, candidates)) for c in row]
            logits = self._run(
                "Ranking with reference",
                not disable_tqdm,
                engine.compare,
                [inputs[i] for i, _, _ in pairs],
                [ref for _, ref, _ in pairs],
                [c for _, _, c in pairs],
                [instructions[i] for i, _, _ in pairs] if instructions is not None else None,
                mode=mode,
            )
            scores = -np.asarray(logits, dtype=np.float32).astype(np.float64).reshape(len(inputs), n)
            ranks = _upstream.ranks_from_scores(scores)
        if return_scores:
            return np.asarray(scores, dtype=np.float64).reshape(len(inputs), n)
        return np.asarray(ranks, dtype=np.int32).reshape(len(inputs), n)

    # -- comparing ---------------------------------------------------------------------------

    def compare(
        self,
        inputs: Sequence[str],
        candidates_A: Sequence[str],
        candidates_B: Sequence[str],
        instructions: Optional[Sequence[str]] = None,
        batch_size: int = 4,
        return_logits: bool = False,
        mode: str = "[A,B]+[B,A]",
        disable_tqdm: bool = False,
    ) -> np.ndarray:
        """Compares candidate A with candidate B for each input.

        Args:
            mode: ``"[A,B]"`` (A left, B right: one pass), ``"[B,A]"`` (B left: one pass) or
                ``"[A,B]+[B,A]"`` (both; ``logit(A,B) - logit(B,A)``, the default). As in
                llm_blender, any other value compares both orders (with a warning).
            return_logits: return the logits instead of booleans.
            Other arguments as in :meth:`rank`.

        Returns:
            ``bool`` array ``[len(inputs)]``, True where A is better; or the ``float32`` logits,
            > 0 where A is better — in every mode (llm_blender's ``[B,A]`` returns
            ``logit(B,A)``, whose sign means the opposite; here it is ``-logit(B,A)``).
        """
        engine = self.engine
        inputs = _validate.strings(inputs, "inputs")
        candidates_a = _validate.strings(candidates_A, "candidates_A")
        candidates_b = _validate.strings(candidates_B, "candidates_B")
        instructions = _validate.optional_strings(instructions, "instructions")
        _validate.same_length(
            ("inputs", inputs),
            ("candidates_A", candidates_a),
            ("candidates_B", candidates_b),
            ("instructions", instructions),
        )
        logits = self._run(
            "Comparing candidates",
            not disable_tqdm,
            engine.compare,
            inputs,
            candidates_a,
            candidates_b,
            instructions,
            mode=_upstream.compare_mode(mode, "compare"),
        )
        return _compare_result(logits, return_logits)

    def compare_conversations(
        self,
        conversations_a: Sequence[Sequence[Dict[str, str]]],
        conversations_b: Sequence[Sequence[Dict[str, str]]],
        batch_size: int = 4,
        return_logits: bool = False,
        mode: str = "[A,B]+[B,A]",
    ) -> np.ndarray:
        """Compares two multi-turn conversations per item by their ASSISTANT turns.

        Each conversation is a list of ``{"role": "USER" | "ASSISTANT", "content": str}``
        turns, alternating and starting with USER; both conversations of an item must have the
        same USER turns. Returns as :meth:`compare` (True / > 0: conversation A is better).
        """
        engine = self.engine
        conv_a = _validate.conversations(conversations_a, "conversations_a")
        conv_b = _validate.conversations(conversations_b, "conversations_b")
        _validate.same_length(("conversations_a", conv_a), ("conversations_b", conv_b))
        mode = _upstream.compare_mode(mode, "compare_conversations")
        logits = self._run("Comparing conversations", True, engine.compare_conversations, conv_a, conv_b, mode=mode)
        return _compare_result(logits, return_logits)

    # -- best / worst of n -------------------------------------------------------------------

    def get_best_of_n(
        self,
        inputs: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]] = None,
        pairrm_cmp_type: str = "bubble",
        return_all: bool = False,
        batch_size: int = 8,
    ) -> Union[List[str], List[List[str]]]:
        """The best candidate of each input.

        Args:
            pairrm_cmp_type: ``"bubble"``: one bubble pass over a seeded random order
                (``2·(n-1)`` passes; the seed is ``Blender(seed=...)``); ``"full"``: the full
                comparison matrix (``n·(n-1)`` passes) as :meth:`rank`. Any other value means
                ``"full"``, as in llm_blender (with a warning).
            return_all: return all candidates, the best first (``"full"``: by rank;
                ``"bubble"``: the winner, then the loser of each bubble step).
            Other arguments as in :meth:`rank`; inputs may have different numbers of candidates.

        Returns:
            The best candidate text per input, or (``return_all``) each input's candidates
            reordered. When every input has a single candidate, that is the answer, and no
            ranker is needed (as in llm_blender).
        """
        return self._select(inputs, candidates, instructions, pairrm_cmp_type, return_all, worst=False)

    def get_worst_of_n(
        self,
        inputs: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]] = None,
        pairrm_cmp_type: str = "bubble",
        return_all: bool = False,
        batch_size: int = 8,
    ) -> Union[List[str], List[List[str]]]:
        """The worst candidate of each input; as :meth:`get_best_of_n`, the worst first."""
        return self._select(inputs, candidates, instructions, pairrm_cmp_type, return_all, worst=True)

    def _select(
        self,
        inputs: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]],
        pairrm_cmp_type: str,
        return_all: bool,
        worst: bool,
    ) -> Union[List[str], List[List[str]]]:
        inputs = _validate.strings(inputs, "inputs")
        rows = _validate.string_lists(candidates, "candidates")
        instructions = _validate.optional_strings(instructions, "instructions")
        _validate.same_length(("inputs", inputs), ("candidates", rows), ("instructions", instructions))
        for i, row in enumerate(rows):
            if not row:
                raise ValueError(f"candidates[{i}] is empty: each input needs at least one candidate")
        if all(len(row) == 1 for row in rows):
            return [list(row) for row in rows] if return_all else [row[0] for row in rows]
        engine = self.engine
        if not (isinstance(pairrm_cmp_type, str) and pairrm_cmp_type in _CMP_TYPES):
            warnings.warn(
                f"pairrm_cmp_type={pairrm_cmp_type!r} is neither 'bubble' nor 'full'; as llm_blender does, "
                "the full comparison matrix decides",
                UserWarning,
                stacklevel=3,
            )
            pairrm_cmp_type = "full"
        orders = self._run(
            "Selecting candidates",
            True,
            engine.select,
            inputs,
            rows,
            instructions,
            worst=worst,
            method=pairrm_cmp_type,
            seed=_validate.non_negative_int(self.seed, "seed"),
        )
        if return_all:
            return [[row[i] for i in order] for row, order in zip(rows, orders)]
        return [row[order[0]] for row, order in zip(rows, orders)]

    # -- generation --------------------------------------------------------------------------

    def n_generate(
        self,
        model: Any,
        model_tokenizer: Any,
        inputs: Sequence[str],
        instructions: Optional[Sequence[str]] = None,
        n: int = 5,
        sampling_mode: Optional[str] = "top_p_sampling",
        batch_size: int = 4,
        **generate_kwargs: Any,
    ) -> List[List[str]]:
        """Samples ``n`` generations per input with a Hugging Face model.

        Only ``model.generate(**encodings, **generate_kwargs)`` (and ``model.device``, if the
        model has one) and ``model_tokenizer(prompts, return_tensors="pt", padding=True,
        truncation=True)``, ``model_tokenizer.batch_decode`` and
        ``model_tokenizer.model_max_length`` are used, so pairrm itself needs no torch. A
        ``vllm.LLM`` samples as in llm_blender: ``model.generate(prompts, sampling_params=...)``
        with ``vllm.SamplingParams(n=n, max_tokens=...)`` and every generate keyword that
        ``SamplingParams`` has.

        Args:
            model: a generation model (e.g. ``transformers.AutoModelForCausalLM``, or a
                ``vllm.LLM``).
            model_tokenizer: its tokenizer (set ``padding_side="left"`` for decoder-only models).
            inputs: the prompts; with ``instructions``, each prompt is ``instruction + "\\n" +
                input``.
            n: samples per input (``num_return_sequences``).
            sampling_mode: ``"top_p_sampling"`` (``top_p`` default 1.0), ``"top_k_sampling"``
                (``top_k`` default 50), both with ``do_sample=True`` and ``temperature`` default
                0.7; ``None``: only ``generate_kwargs``.
            batch_size: prompts per ``generate`` call.
            **generate_kwargs: passed to ``model.generate``; without ``max_new_tokens``,
                ``max_length`` defaults to ``model_tokenizer.model_max_length``.

        Returns:
            ``n`` generated texts per input (the prompt removed for decoder-only models).
        """
        inputs = _validate.strings(inputs, "inputs")
        instructions = _validate.optional_strings(instructions, "instructions")
        _validate.same_length(("inputs", inputs), ("instructions", instructions))
        n = _validate.positive_int(n, "n")
        batch_size = _validate.positive_int(batch_size, "batch_size")
        kwargs = dict(generate_kwargs)
        if sampling_mode == "top_k_sampling":
            kwargs["do_sample"] = True
            kwargs.setdefault("top_k", 50)
            kwargs.setdefault("temperature", 0.7)
        elif sampling_mode == "top_p_sampling":
            kwargs["do_sample"] = True
            kwargs.setdefault("top_p", 1.0)
            kwargs.setdefault("temperature", 0.7)
        elif sampling_mode is not None:
            raise ValueError(f"Unknown sampling_mode: {sampling_mode!r}; expected one of {_SAMPLING_MODES}")
        if "max_new_tokens" not in kwargs:
            kwargs.setdefault("max_length", model_tokenizer.model_max_length)
        kwargs["num_return_sequences"] = n
        kwargs["output_scores"] = True
        kwargs["return_dict_in_generate"] = True
        prompts = [f"{i}\n{x}" for i, x in zip(instructions, inputs)] if instructions is not None else inputs
        from_vllm = _upstream.vllm_generate(model, model_tokenizer, prompts, n, kwargs)
        if from_vllm is not None:
            return from_vllm
        device = getattr(model, "device", None)
        sampled: List[List[str]] = []
        bar = make_bar("Sampling generations", self.use_tqdm, unit="prompt")
        try:
            if bar is not None:
                bar(0, len(prompts))
            for start in range(0, len(prompts), batch_size):
                batch = prompts[start : start + batch_size]
                encodings = model_tokenizer(batch, return_tensors="pt", padding=True, truncation=True)
                encodings = {k: v.to(device) if device is not None else v for k, v in encodings.items()}
                outputs = model.generate(**encodings, **kwargs)
                ids = outputs.sequences
                prompt_len = encodings["input_ids"].shape[1]
                if ids.shape[1] == prompt_len + len(outputs.scores):
                    ids = ids[:, prompt_len:]  # decoder-only: drop the prompt
                texts = model_tokenizer.batch_decode(ids, skip_special_tokens=True)
                if len(texts) != len(batch) * n:
                    raise ValueError(
                        f"model.generate returned {len(texts)} sequences for {len(batch)} prompts with "
                        f"num_return_sequences={n}"
                    )
                sampled.extend(list(texts[j : j + n]) for j in range(0, len(texts), n))
                if bar is not None:
                    bar(start + len(batch), len(prompts))
        finally:
            if bar is not None:
                bar.close()
        return sampled

    def best_of_n_generate(
        self,
        model: Any,
        model_tokenizer: Any,
        inputs: Sequence[str],
        instructions: Optional[Sequence[str]] = None,
        n: int = 5,
        sampling_mode: Optional[str] = "top_p_sampling",
        batch_size: int = 4,
        pairrm_cmp_type: str = "bubble",
        return_all: bool = False,
        **generate_kwargs: Any,
    ) -> Union[List[str], List[List[str]]]:
        """Samples ``n`` generations per input (:meth:`n_generate`) and returns the best one by
        PairRM (:meth:`get_best_of_n`), or all of them best first with ``return_all``."""
        sampled = self.n_generate(
            model,
            model_tokenizer,
            inputs,
            instructions=instructions,
            n=n,
            sampling_mode=sampling_mode,
            batch_size=batch_size,
            **generate_kwargs,
        )
        return self.get_best_of_n(
            inputs,
            sampled,
            instructions=instructions,
            batch_size=min(batch_size, 32),
            pairrm_cmp_type=pairrm_cmp_type,
            return_all=return_all,
        )

    # -- the GenFuser (not provided) ---------------------------------------------------------

    def loadfuser(self, fuser_path: str, device: Any = None, **kwargs: Any) -> None:
        """llm_blender's GenFuser loader: not provided (pairrm runs the PairRM ranker only).

        Raises:
            NotImplementedError: always, naming what to use instead.
        """
        raise _upstream.fuser_unavailable("loadfuser")

    def fuse(
        self,
        inputs: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]] = None,
        batch_size: int = 4,
        **generate_kwargs: Any,
    ) -> List[str]:
        """llm_blender's GenFuser generation: not provided (see :meth:`loadfuser`).

        Raises:
            NotImplementedError: always, naming what to use instead.
        """
        raise _upstream.fuser_unavailable("fuse")

    def rank_and_fuse(
        self,
        inputs: Sequence[str],
        candidates: Sequence[Sequence[str]],
        instructions: Optional[Sequence[str]] = None,
        return_scores: bool = False,
        batch_size: int = 4,
        top_k: int = 3,
        **generate_kwargs: Any,
    ) -> Any:
        """llm_blender's rank-then-fuse: not provided (see :meth:`loadfuser`); rank with
        :meth:`rank` and fuse with your own generator.

        Raises:
            NotImplementedError: always, naming what to use instead.
        """
        raise _upstream.fuser_unavailable("rank_and_fuse")


def _compare_result(logits: List[float], return_logits: bool) -> np.ndarray:
    values = np.asarray(logits, dtype=np.float32).reshape(len(logits))
    return values if return_logits else values > 0
