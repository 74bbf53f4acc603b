"""The llm_blender compatibility distribution (python/compat): `import llm_blender` code runs
unchanged on pairrm. LLM-Blender's README and the PairRM model card run verbatim (upstream_docs.py),
with `llm-blender/PairRM` resolved to a test checkpoint through an offline Hugging Face cache;
TRL's PairRMJudge calls run as TRL makes them; and the configs, import paths and distribution
metadata are llm_blender's."""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import importlib.util
import inspect
import re
import subprocess
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest

import pairrm
from conftest import pairrm_hub_cache
from upstream_docs import MODEL_CARD, README

llm_blender = pytest.importorskip(
    "llm_blender", reason="the llm_blender compatibility distribution is not installed: pip install ./python/compat"
)
if not issubclass(llm_blender.Blender, pairrm.Blender):
    pytest.skip("llm_blender is the original package here, not pairrm's compatibility distribution", allow_module_level=True)

from llm_blender.blender.blender_utils import get_topk_candidates_from_ranks  # noqa: E402


def run(code: str, namespace: Dict[str, Any]) -> Dict[str, Any]:
    exec(compile(code, "<upstream docs>", "exec"), namespace)
    return namespace


def statements(code: str) -> List[Any]:
    """The top-level statements of a block, compiled one by one."""
    return [compile(ast.Module(body=[node], type_ignores=[]), "<upstream docs>", "exec") for node in ast.parse(code).body]


@pytest.fixture(scope="module")
def native(tmp_path_factory: Any) -> pairrm.Blender:
    """pairrm's own Blender on the same checkpoint (the snippets' numbers are compared with it)."""
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker("llm-blender/PairRM", cache_dir=str(pairrm_hub_cache(tmp_path_factory.mktemp("native"))), download=False)
    return blender


# -- a stand-in transformers for the best-of-n blocks ---------------------------------------------

SAMPLES = ["Sure!", "Here is a joke about OpenAI: it is open.", "No.", "Why did the AI cross the road?", "Ha"]


class Encoding(dict):
    """transformers' BatchEncoding: a dict whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class FakeTokenizer:
    """Characters as ids (0: padding, on the left); a chat template; numpy instead of torch."""

    model_max_length = 128

    def apply_chat_template(self, messages: List[Dict[str, str]], tokenize: bool, add_generation_prompt: bool) -> str:
        assert tokenize is False
        text = "".join(f"<|{m['role']}|>\n{m['content']}</s>\n" for m in messages)
        return text + ("<|assistant|>\n" if add_generation_prompt else "")

    def __call__(self, prompts: Any, return_tensors: str, padding: bool = False, truncation: bool = False) -> Encoding:
        assert return_tensors == "pt"
        batch = [prompts] if isinstance(prompts, str) else list(prompts)
        width = max(len(p) for p in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        for i, p in enumerate(batch):
            ids[i, width - len(p) :] = [ord(c) for c in p]
        return Encoding(input_ids=ids, attention_mask=(ids > 0).astype(np.int64))

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        return "".join(chr(int(x)) for x in ids if x > 0)

    def batch_decode(self, rows: Any, skip_special_tokens: bool = False) -> List[str]:
        return [self.decode(row) for row in rows]


class FakeCausalLM:
    """Appends the next of SAMPLES to the prompt for each returned sequence."""

    def __init__(self) -> None:
        self.generated: List[str] = []

    def generate(self, input_ids: Any, attention_mask: Optional[Any] = None, **kwargs: Any) -> Any:
        rows = []
        for prompt in input_ids:
            for _ in range(kwargs.get("num_return_sequences", 1)):
                sample = SAMPLES[len(self.generated) % len(SAMPLES)]
                self.generated.append(sample)
                rows.append(list(prompt) + [ord(c) for c in sample.ljust(48, "\0")])
        sequences = np.array(rows, dtype=np.int64)
        if kwargs.get("return_dict_in_generate"):
            return types.SimpleNamespace(sequences=sequences, scores=tuple(range(48)))
        return sequences


@pytest.fixture
def fake_transformers(monkeypatch: Any) -> Dict[str, Any]:
    """`transformers` with AutoTokenizer / AutoModelForCausalLM stand-ins (what was built is kept)."""
    built: Dict[str, Any] = {}
    module = types.ModuleType("transformers")

    class AutoTokenizer:
        @staticmethod
        def from_pretrained(name: str, **kwargs: Any) -> FakeTokenizer:
            built["tokenizer"] = FakeTokenizer()
            return built["tokenizer"]

    class AutoModelForCausalLM:
        @staticmethod
        def from_pretrained(name: str, **kwargs: Any) -> FakeCausalLM:
            built["model"] = FakeCausalLM()
            return built["model"]

    module.AutoTokenizer, module.AutoModelForCausalLM = AutoTokenizer, AutoModelForCausalLM  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "transformers", module)
    return built


# -- LLM-Blender's README ------------------------------------------------------------------------


def test_readme_ranking_and_comparing(pairrm_hub: Path, native: pairrm.Blender) -> None:
    ns = run(README["load"], {})
    assert isinstance(ns["blender"], llm_blender.Blender)
    run(README["rank"], ns)
    ranks = ns["ranks"]
    assert isinstance(ranks, np.ndarray) and ranks.dtype == np.int32 and ranks.shape == (2, 3)
    assert np.array_equal(ranks, native.rank(ns["inputs"], ns["candidates_texts"]))
    run(README["compare"], ns)
    results = ns["comparison_results"]
    assert results.dtype == np.bool_ and results.shape == (2,)
    assert np.array_equal(results, native.compare(ns["inputs"], ns["candidates_A"], ns["candidates_B"]))


def test_readme_fusing_names_the_alternative(pairrm_hub: Path) -> None:
    """The GenFuser is not provided: its calls raise NotImplementedError; the block's ranking
    helper works."""
    ns = run(README["rank"], run(README["load"], {}))
    load_fuser, import_helper, topk, fuse, rank_and_fuse = statements(README["fuse"])
    with pytest.raises(NotImplementedError, match=re.escape("loadfuser(): LLM-Blender's GenFuser")):
        exec(load_fuser, ns)
    exec(import_helper, ns)
    exec(topk, ns)
    top = ns["topk_candidates"]
    assert isinstance(top, np.ndarray) and top.shape == (2, 3)
    for row, ranks, cands in zip(top, ns["ranks"], ns["candidates_texts"]):
        assert list(row) == [cands[i] for i in np.argsort(ranks)]
    with pytest.raises(NotImplementedError, match=re.escape("fuse(): LLM-Blender's GenFuser")):
        exec(fuse, ns)
    with pytest.raises(NotImplementedError, match=re.escape("rank_and_fuse(): LLM-Blender's GenFuser")):
        exec(rank_and_fuse, ns)


def test_readme_best_of_n(pairrm_hub: Path, fake_transformers: Dict[str, Any], capsys: Any, native: pairrm.Blender) -> None:
    ns = run(README["best_of_n"], {})
    outputs, model = ns["outputs"], fake_transformers["model"]
    assert isinstance(outputs, list) and len(outputs) == 1 and isinstance(outputs[0], str)
    sampled = model.generated[1:]  # the first sample is the block's "standard sampling generation"
    assert len(sampled) == 10 and outputs[0] in sampled
    assert outputs == native.get_best_of_n(ns["prompts"], [sampled])
    printed = capsys.readouterr().out
    assert "### best-of-n generations:" in printed and outputs[0] in printed


def test_readme_rank_with_ref_mode_longest(pairrm_hub: Path, native: pairrm.Blender) -> None:
    """The README's `rank_with_ref(..., mode="longest")`: llm_blender passes mode to compare(),
    which compares both orders for it; ref_mode (default "longest") picks the reference."""
    with pytest.warns(UserWarning, match="not a compare mode .* chosen by ref_mode"):
        ns = run(README["rank_with_ref"], {})
    rewards = ns["rewards"]
    assert isinstance(rewards, np.ndarray) and rewards.dtype == np.float64 and rewards.shape == (2, 3)
    assert np.array_equal(rewards, native.rank_with_ref(ns["inputs"], ns["candidates_texts"], return_scores=True))
    run(README["rank_with_ref_candidates"], ns)
    first = native.rank_with_ref(ns["inputs"], ns["candidates_texts"], return_scores=True, ref_mode="first")
    assert np.array_equal(ns["rewards"], first)  # "same as mode="first""


def test_readme_from_pretrained_names_the_alternative(monkeypatch: Any) -> None:
    """DebertaV2PairRM is a torch model class: importing it says what to use instead."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the block sets it; restored afterwards
    with pytest.raises(ImportError, match="DebertaV2PairRM, a torch model class"):
        run(README["from_pretrained"], {})


# -- the PairRM model card -----------------------------------------------------------------------


def test_model_card_ranking_and_comparing(pairrm_hub: Path, native: pairrm.Blender) -> None:
    ns = run(MODEL_CARD["rank"], run(MODEL_CARD["load"], {}))
    assert np.array_equal(ns["ranks"], native.rank(ns["inputs"], ns["candidates_texts"]))
    assert ns["ranks"].dtype == np.int32
    run(MODEL_CARD["compare"], ns)
    assert np.array_equal(ns["comparison_results"], native.compare(ns["inputs"], ns["candidates_A"], ns["candidates_B"]))


def test_model_card_conversations(pairrm_hub: Path, native: pairrm.Blender) -> None:
    """The block's conversations end in a literal `...` (Python's Ellipsis): verbatim, that is a
    clear TypeError (llm_blender: AssertionError, an odd number of turns); with the placeholder
    lines left out it runs."""
    ns = run(MODEL_CARD["load"], {})
    with pytest.raises(TypeError, match=re.escape("conversations_a[0][2] must be a dict with 'role' and 'content', not ellipsis")):
        run(MODEL_CARD["compare_conversations"], dict(ns))
    filled = MODEL_CARD["compare_conversations"].replace("    ...\n", "")
    run(filled, ns)
    results = ns["comparison_results"]
    assert results.dtype == np.bool_ and results.shape == (1,)
    assert np.array_equal(results, native.compare_conversations([ns["conv1"]], [ns["conv2"]]))


def test_model_card_best_of_n(pairrm_hub: Path, fake_transformers: Dict[str, Any], capsys: Any, native: pairrm.Blender) -> None:
    ns = run(MODEL_CARD["best_of_n"], {})
    sampled = fake_transformers["model"].generated[1:]
    assert len(sampled) == 10 and ns["outputs"] == native.get_best_of_n(ns["prompts"], [sampled])
    assert "### best-of-n generations:\n " + ns["outputs"][0] in capsys.readouterr().out


# -- TRL's PairRMJudge ----------------------------------------------------------------------------


class TorchDevice:
    """What TRL passes as `device`: accelerate's Accelerator().device, a torch.device, whose str()
    is "cpu" on a CPU machine."""

    def __init__(self, name: str) -> None:
        self.type = name.split(":")[0]
        self.name = name

    def __str__(self) -> str:
        return self.name


PROMPTS = ["Translate 'hello' to French", "What's the capital of Japan?", "2+2?"]
COMPLETIONS = [["Bonjour", "Salut"], ["Kyoto", "Tokyo"], ["4", "four"]]


def test_trl_finds_the_distribution() -> None:
    """TRL 0.10 checks find_spec("llm_blender"); TRL 0.11 to 0.28 use transformers'
    _is_package_available("llm_blender"), which also needs importlib.metadata.version of that name
    (else it reports llm-blender as missing); `trl[judges]` requires llm-blender>=0.0.2."""
    assert importlib.util.find_spec("llm_blender") is not None
    version = importlib.metadata.version("llm_blender")
    assert version == f"0.0.2+pairrm.{pairrm.__version__}"
    assert importlib.metadata.version("llm-blender") == version
    requires = importlib.metadata.requires("llm-blender") or []
    assert any(re.match(r"pairrm\b", r) for r in requires), requires


def test_trl_pairrm_judge_calls(pairrm_hub: Path) -> None:
    """The calls TRL's PairRMJudge makes (trl/trainer/judges.py in TRL 0.10.1 to 0.28, then
    trl/experimental/judges/judges.py to 1.0.0), in order, on the compatibility llm_blender; the
    answers equal pairrm.PairRMJudge's."""
    import llm_blender as llb  # TRL: `import llm_blender`, guarded by its availability check

    blender = llb.Blender()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the CPU device is silent
        blender.loadranker("llm-blender/PairRM", device=TorchDevice("cpu"))
    ours = pairrm.PairRMJudge()

    # judge(prompts, completions, shuffle_order=False) in TRL 0.10: rank, then 0-based.
    ranks = blender.rank(PROMPTS, COMPLETIONS)
    ranks -= 1
    assert ranks[:, 0].tolist() == ours.judge(PROMPTS, COMPLETIONS, shuffle_order=False)

    # TRL 0.11+: rank(..., return_scores=..., disable_tqdm=True); soft scores over a temperature.
    scores = blender.rank(PROMPTS, COMPLETIONS, return_scores=True, disable_tqdm=True)
    scores /= 2.0
    shifted = np.exp(scores - np.amax(scores, axis=-1, keepdims=True))
    probs = (shifted / np.sum(shifted, axis=-1, keepdims=True))[:, 0].tolist()
    assert probs == ours.judge(PROMPTS, COMPLETIONS, shuffle_order=False, return_scores=True, temperature=2.0)

    # shuffle_order=True: numpy's global generator flips pairs, the ranks are flipped back.
    np.random.seed(7)
    flip = np.random.choice([True, False], size=len(PROMPTS))
    shuffled = [pair[::-1] if f else pair for f, pair in zip(flip, COMPLETIONS)]
    ranks = blender.rank(PROMPTS, shuffled, return_scores=False, disable_tqdm=True)
    ranks -= 1
    ranks[flip] = ranks[flip][:, ::-1]
    np.random.seed(7)
    assert ranks[:, 0].tolist() == ours.judge(PROMPTS, COMPLETIONS)

    with pytest.warns(UserWarning, match="device='cuda:0' is ignored"):
        llb.Blender().loadranker("llm-blender/PairRM", device=TorchDevice("cuda:0"))


def test_trl_pairrm_judge_itself(pairrm_hub: Path) -> None:
    """TRL's own PairRMJudge on the compatibility llm_blender, where TRL (with torch and
    accelerate) is installed."""
    pytest.importorskip("trl", reason="TRL is not installed: its calls are reproduced by test_trl_pairrm_judge_calls")
    judge_class = None
    for module in ("trl", "trl.experimental.judges"):
        try:
            judge_class = importlib.import_module(module).PairRMJudge
            break
        except (ImportError, AttributeError):
            continue
    if judge_class is None:
        pytest.skip("this TRL has no PairRMJudge (removed in TRL 1.1)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TRL 0.26-0.28: "now located in trl.experimental"
        judge = judge_class()
    assert isinstance(judge.blender, llm_blender.Blender)
    want = pairrm.PairRMJudge().judge(PROMPTS, COMPLETIONS, shuffle_order=False)
    assert judge.judge(PROMPTS, COMPLETIONS, shuffle_order=False) == want


# -- before loadranker ---------------------------------------------------------------------------


def test_before_loadranker_as_llm_blender() -> None:
    """llm_blender.Blender() without a ranker config loads nothing; its ranking methods raise
    AttributeError (llm_blender: 'Blender' object has no attribute 'ranker'). n_generate needs no
    ranker, and neither do single candidates."""
    blender = llm_blender.Blender()
    assert blender.ranker_config is None and blender.fuser_config is None
    for call in (
        lambda: blender.rank(["x"], [["a", "b"]]),
        lambda: blender.compare(["x"], ["a"], ["b"]),
        lambda: blender.rank_with_ref(["x"], [["a", "b"]], return_scores=True, batch_size=2, mode="longest"),
        lambda: blender.get_best_of_n(["x"], [["a", "b"]]),
    ):
        with pytest.raises(AttributeError, match="no ranker loaded"):
            call()
    assert blender.get_best_of_n(["x"], [["a"]]) == ["a"]
    model, tokenizer = FakeCausalLM(), FakeTokenizer()
    assert len(blender.n_generate(model, tokenizer, ["x"], n=3, max_new_tokens=4)[0]) == 3
    with pytest.raises(AttributeError, match="no ranker loaded"):
        blender.best_of_n_generate(model, tokenizer, ["x"], n=3)


# -- configs, constructor, import paths -----------------------------------------------------------

#: llm_blender 0.0.2's config fields and defaults.
CONFIG_DEFAULTS = {
    "BlenderConfig": {"device": "cuda", "use_tqdm": True},
    "RankerConfig": {
        "ranker_type": None, "model_type": None, "model_name": None, "cache_dir": None, "load_checkpoint": None,
        "source_maxlength": None, "candidate_maxlength": None, "n_tasks": 1, "num_pos": 1, "num_neg": 1,
        "sub_sampling_mode": "all_pair", "sub_sampling_ratio": 0.5, "loss_type": "instructgpt",
        "reduce_type": "linear", "inference_mode": "bubble", "drop_out": 0.05, "fp16": True, "device": None,
    },
    "GenFuserConfig": {
        "model_name": "llm-blender/gen_fuser_3b", "cache_dir": None, "max_length": 1024, "candidate_maxlength": 128,
        "torch_dtype": "bfloat16", "load_in_4bit": False, "load_in_8bit": False, "device": None,
    },
}


@pytest.mark.parametrize("name", sorted(CONFIG_DEFAULTS))
def test_configs_have_llm_blenders_fields(name: str) -> None:
    cls = getattr(llm_blender, name)
    config = cls()
    assert config.to_dict() == CONFIG_DEFAULTS[name]
    assert [f.name for f in dataclasses.fields(cls)] == list(CONFIG_DEFAULTS[name])
    assert cls.from_dict(dict(config.to_dict(), unknown_key=1)) == config
    assert cls.from_json(config.to_json()) == config
    module = {"BlenderConfig": "blender", "RankerConfig": "pair_ranker", "GenFuserConfig": "gen_fuser"}[name]
    assert getattr(importlib.import_module(f"llm_blender.{module}.config"), name) is cls


def test_blender_signature_and_import_paths() -> None:
    params = [(p.name, p.default) for p in inspect.signature(llm_blender.Blender.__init__).parameters.values()]
    assert params == [("self", inspect.Parameter.empty), ("blender_config", None), ("ranker_config", None), ("fuser_config", None)]
    from llm_blender.blender.blender import Blender

    assert Blender is llm_blender.Blender
    loadranker = [(p.name, p.kind.name) for p in inspect.signature(Blender.loadranker).parameters.values()]
    assert loadranker == [("self", "POSITIONAL_OR_KEYWORD"), ("ranker_path", "POSITIONAL_OR_KEYWORD"),
                          ("device", "POSITIONAL_OR_KEYWORD"), ("kwargs", "VAR_KEYWORD")]
    with pytest.raises(ImportError, match="torch helpers"):
        from llm_blender.blender.blender_utils import load_ranker  # noqa: F401


def test_blender_from_configs(pairrm_hub: Path) -> None:
    """Blender(blender_config, ranker_config) loads ranker_config.load_checkpoint with the config's
    fields, as llm_blender; ranker_config then describes what was loaded."""
    blender = llm_blender.Blender(
        llm_blender.BlenderConfig(device="cpu", use_tqdm=False),
        llm_blender.RankerConfig(load_checkpoint="llm-blender/PairRM", source_maxlength=64, candidate_maxlength=32),
    )
    assert blender.use_tqdm is False
    config = blender.ranker_config
    assert isinstance(config, llm_blender.RankerConfig)
    assert (config.source_maxlength, config.candidate_maxlength, config.load_checkpoint) == (64, 32, "llm-blender/PairRM")
    assert (blender.engine.source_max_length, blender.engine.candidate_max_length) == (64, 32)
    plain = llm_blender.Blender()
    plain.loadranker("llm-blender/PairRM")
    assert (plain.ranker_config.source_maxlength, plain.ranker_config.candidate_maxlength) == (1224, 412)
    with pytest.raises(ValueError, match="ranker_config.load_checkpoint is None"):
        llm_blender.Blender(ranker_config=llm_blender.RankerConfig())
    with pytest.raises(NotImplementedError, match="loadfuser"):
        llm_blender.Blender(fuser_config=llm_blender.GenFuserConfig())


def test_get_topk_candidates_from_ranks() -> None:
    cands = [["get out!", "hi! I am fine, thanks!", "bye!"], ["I love you too!", "I hate you!", "Thanks!"]]
    top = get_topk_candidates_from_ranks(np.array([[3, 1, 2], [1, 3, 2]]), cands, top_k=2)
    assert isinstance(top, np.ndarray) and top.tolist() == [["hi! I am fine, thanks!", "bye!"], ["I love you too!", "Thanks!"]]
    assert get_topk_candidates_from_ranks([[2, 1]], [["a", "b"]], top_k=None).tolist() == [["b", "a"]]


def test_no_torch_is_imported() -> None:
    code = (
        "import sys, llm_blender, llm_blender.blender.blender_utils\n"
        "llm_blender.Blender(llm_blender.BlenderConfig(use_tqdm=False))\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'dataclasses_json') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
