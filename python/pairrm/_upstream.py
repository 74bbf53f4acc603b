"""llm_blender 0.0.2's argument conventions, reproduced so that code written for it runs unchanged
on :class:`pairrm.Blender`: which compare modes take which path, what ``loadranker`` keyword
arguments mean, how a reference candidate is chosen, how scores become ranks, and its vLLM
sampling path. Where llm_blender silently does something surprising, the same thing happens here
with a ``UserWarning`` that says so."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

__all__ = [
    "COMPARE_MODES",
    "BOTH_ORDERS",
    "LOAD_OPTIONS",
    "RANKER_CONFIG_FIELDS",
    "REF_MODES",
    "compare_mode",
    "loadranker_options",
    "pick_reference",
    "ranks_from_scores",
    "fuser_unavailable",
    "vllm_generate",
]

logger = logging.getLogger("pairrm")

BOTH_ORDERS = "[A,B]+[B,A]"
#: The compare modes; llm_blender runs a single pass only for the first two.
COMPARE_MODES = ("[A,B]", "[B,A]", BOTH_ORDERS)
REF_MODES = ("longest", "shortest", "median_length", "first", "last")

#: pairrm's own ``loadranker`` keyword arguments (beyond ``ranker_path`` and ``device``).
LOAD_OPTIONS = (
    "cache_dir",
    "revision",
    "source_maxlength",
    "candidate_maxlength",
    "threads",
    "max_batch_tokens",
    "dtype",
    "precision",
    "download",
)
#: llm_blender's ``RankerConfig`` fields that describe the model: pairrm reads them from the
#: checkpoint's own config.json. The values PairRM's checkpoints hold (and None) pass silently;
#: others are ignored with a warning (``load_checkpoint`` is silent when it names ``ranker_path``).
_CHECKPOINT_FIELDS: Dict[str, tuple] = {
    "ranker_type": ("pairranker",),
    "model_type": ("deberta",),
    "model_name": ("microsoft/deberta-v3-large",),
    "n_tasks": (1,),
    "load_checkpoint": (),
}
#: ``RankerConfig`` fields that change nothing when ranking on the CPU, in llm_blender either:
#: training options, and ``fp16`` (llm_blender halves the model only on cuda/mps).
_INERT_FIELDS = (
    "num_pos",
    "num_neg",
    "sub_sampling_mode",
    "sub_sampling_ratio",
    "loss_type",
    "reduce_type",
    "inference_mode",
    "drop_out",
    "fp16",
)
#: Every ``RankerConfig`` field ``loadranker`` accepts as a keyword argument (``device`` is a
#: parameter of its own).
RANKER_CONFIG_FIELDS = ("cache_dir", "source_maxlength", "candidate_maxlength") + tuple(_CHECKPOINT_FIELDS) + _INERT_FIELDS


def compare_mode(mode: Any, where: str) -> str:
    """The mode llm_blender's ``compare`` actually runs for ``mode``: ``"[A,B]"`` and ``"[B,A]"``
    are one pass each; any other value, not only ``"[A,B]+[B,A]"``, takes its both-orders path.
    Such a value is accepted with a warning (``rank_with_ref(..., mode="longest")``, from
    LLM-Blender's README, is one: ``mode`` is forwarded to ``compare``, ``ref_mode`` picks the
    reference)."""
    if isinstance(mode, str) and mode in COMPARE_MODES:
        return mode
    hint = " (the reference candidate is chosen by ref_mode)" if where == "rank_with_ref" else ""
    warnings.warn(
        f"{where}(mode={mode!r}): not a compare mode ('[A,B]', '[B,A]' or '[A,B]+[B,A]'){hint}; "
        "as llm_blender does, any other value compares both orders ('[A,B]+[B,A]')",
        UserWarning,
        stacklevel=3,
    )
    return BOTH_ORDERS


def loadranker_options(ranker_path: str, kwargs: Mapping[str, Any]) -> Dict[str, Any]:
    """pairrm's options out of ``loadranker``'s keyword arguments, which may be any of
    pairrm's :data:`LOAD_OPTIONS` or llm_blender's ``RankerConfig`` fields (``Blender(ranker_config=...)``
    passes them all). ``RankerConfig`` fields that mean nothing to pairrm are dropped, with a
    warning when their value would have changed llm_blender's model.

    Raises:
        TypeError: a name that is neither.
    """
    unknown = sorted(set(kwargs) - set(LOAD_OPTIONS) - set(RANKER_CONFIG_FIELDS))
    if unknown:
        raise TypeError(
            f"loadranker() got unexpected keyword argument(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(LOAD_OPTIONS)}, and llm_blender's RankerConfig fields ({', '.join(RANKER_CONFIG_FIELDS)})"
        )
    ignored = []
    for key, harmless in _CHECKPOINT_FIELDS.items():
        value = kwargs.get(key)
        if value is None or value in harmless:
            continue
        if key == "load_checkpoint" and _same_path(value, ranker_path):
            continue
        ignored.append(f"{key}={value!r}")
    if ignored:
        warnings.warn(
            f"loadranker(): {', '.join(ignored)} not used: pairrm loads the PairRM checkpoint at "
            f"{ranker_path!r} as its own config.json describes it",
            UserWarning,
            stacklevel=3,
        )
    return {key: kwargs[key] for key in LOAD_OPTIONS if key in kwargs}


def _same_path(value: Any, ranker_path: str) -> bool:
    try:
        return os.fspath(value) == ranker_path
    except TypeError:
        return False


def pick_reference(candidates: Sequence[str], ref_mode: str) -> str:
    """The reference candidate as llm_blender's ``rank_with_ref`` picks it (lengths in
    characters; ``max``/``min`` keep the first of equals, the median sort is stable)."""
    if ref_mode == "longest":
        return max(candidates, key=len)
    if ref_mode == "shortest":
        return min(candidates, key=len)
    if ref_mode == "median_length":
        return sorted(candidates, key=len)[len(candidates) // 2]
    if ref_mode == "first":
        return candidates[0]
    if ref_mode == "last":
        return candidates[-1]
    raise ValueError(f"Unknown ref_mode: {ref_mode!r}; expected longest, shortest, median_length, first or last")


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """``int32`` ranks of a ``[rows, n]`` score array: 1 for the highest score; equal scores share
    the better rank (llm_blender's rule)."""
    ranks = np.zeros(scores.shape, dtype=np.int32)
    for i, row in enumerate(scores.tolist()):
        ordered = sorted(row, reverse=True)
        ranks[i] = [ordered.index(value) + 1 for value in row]
    return ranks


def fuser_unavailable(method: str) -> NotImplementedError:
    """The error of llm_blender's GenFuser methods, naming what to use instead."""
    return NotImplementedError(
        f"{method}(): LLM-Blender's GenFuser (llm-blender/gen_fuser_3b, a 3B-parameter seq2seq "
        "generator) is not part of pairrm, which runs the PairRM ranker only. Choose the top "
        "candidates with pairrm (rank, get_best_of_n(..., return_all=True)) and generate the fusion "
        "with transformers (AutoModelForSeq2SeqLM.from_pretrained('llm-blender/gen_fuser_3b')), or "
        "use the original llm-blender package for the fuser"
    )


def vllm_generate(model: Any, model_tokenizer: Any, prompts: List[str], n: int, kwargs: Dict[str, Any]) -> Optional[List[List[str]]]:
    """``n`` samples per prompt from a ``vllm.LLM``, as llm_blender's ``n_generate`` does it
    (``max_tokens`` from ``max_tokens``, ``max_new_tokens`` or ``max_length``, then every
    generate keyword that ``vllm.SamplingParams`` has as an attribute); ``None`` when ``model``
    is not a ``vllm.LLM`` (vLLM is looked up only if it is already imported)."""
    vllm = sys.modules.get("vllm")
    llm_class = getattr(vllm, "LLM", None)
    if not isinstance(llm_class, type) or not isinstance(model, llm_class):
        return None
    max_tokens = kwargs.get("max_tokens", kwargs.get("max_new_tokens", kwargs.get("max_length", model_tokenizer.model_max_length)))
    params = vllm.SamplingParams(n=n, max_tokens=max_tokens)
    for key, value in kwargs.items():
        if hasattr(params, key):
            logger.info("pairrm: vLLM sampling parameter %s = %r", key, value)
            setattr(params, key, value)
    outputs = model.generate(prompts, sampling_params=params)
    return [[sample.text for sample in output.outputs] for output in outputs]
