"""Every call llm_blender 0.0.2 accepts works on pairrm.Blender with llm_blender's numbers, including
the surprising ones (which warn): extra keyword arguments, modes that silently change the path,
per-call token limits, RankerConfig fields in loadranker, the state before loadranker, the vLLM
sampling path, and the GenFuser methods (a clear NotImplementedError)."""

from __future__ import annotations

import re
import sys
import types
import warnings
from typing import Any, List

import numpy as np
import pytest

import pairrm
from conftest import close, goldens, load, model_dir

INPUTS = ["hello!", "What is 2+2?", "Tell me a story."]
CANDS = [["hi!", "f**k off!", "hey there"], ["4", "5", "four"], ["Once upon a time.", "No.", "A fox ran."]]


def no_warnings() -> Any:
    """A context in which any warning fails the test."""
    context = warnings.catch_warnings()
    context.__enter__()
    warnings.simplefilter("error")
    return context


# -- rank_with_ref: the README's mode="longest" and the compare modes ----------------------------


def test_rank_with_ref_with_the_readmes_mode_longest(blender: pairrm.Blender) -> None:
    """LLM-Blender's README calls rank_with_ref(..., mode="longest"): llm_blender passes `mode` to
    compare(), where a value other than [A,B] / [B,A] compares both orders; ref_mode (default
    "longest") picks the reference. Same numbers as the default call, and a warning."""
    with pytest.warns(UserWarning, match=re.escape("rank_with_ref(mode='longest'): not a compare mode")):
        rewards = blender.rank_with_ref(INPUTS, CANDS, return_scores=True, batch_size=2, mode="longest")
    assert rewards.dtype == np.float64 and rewards.shape == (3, 3)
    assert np.array_equal(rewards, blender.rank_with_ref(INPUTS, CANDS, return_scores=True))
    with pytest.warns(UserWarning, match="the reference candidate is chosen by ref_mode"):
        ranks = blender.rank_with_ref(INPUTS, CANDS, mode="shortest", ref_mode="first")
    assert np.array_equal(ranks, blender.rank_with_ref(INPUTS, CANDS, ref_mode="first"))
    ctx = no_warnings()
    try:
        both = blender.rank_with_ref(INPUTS, CANDS, return_scores=True, mode="[A,B]+[B,A]")
    finally:
        ctx.__exit__(None, None, None)
    assert np.array_equal(both, rewards)


def test_rank_with_ref_goldens_through_the_mode_argument() -> None:
    """The explicit both-orders mode gives the reference's recorded rank_with_ref numbers."""
    blender, g = load("tiny-original"), goldens("tiny-original")
    for r in g["rank_with_ref"]:
        kwargs = dict(ref_candidates=[r["reference"]]) if r["ref_mode"] == "given" else dict(ref_mode=r["ref_mode"])
        args = ([r["source"]], [r["candidates"]])
        scores = blender.rank_with_ref(*args, instructions=[r["instruction"]], return_scores=True, mode="[A,B]+[B,A]", **kwargs)
        assert all(close(x, y) for x, y in zip(scores[0], r["scores"])), (r["ref_mode"], scores[0], r["scores"])
        ranks = blender.rank_with_ref(*args, instructions=[r["instruction"]], mode="[A,B]+[B,A]", **kwargs)
        assert ranks[0].tolist() == r["ranks"]


@pytest.mark.parametrize("mode", ["[A,B]", "[B,A]"])
@pytest.mark.parametrize("ref_mode", ["longest", "shortest", "median_length", "first", "last"])
def test_rank_with_ref_one_pass_modes(blender: pairrm.Blender, mode: str, ref_mode: str) -> None:
    """mode="[A,B]" / "[B,A]" score each candidate with one pass, -compare(reference, c, mode),
    as llm_blender (whose [B,A] logit has the opposite sign: see docs/python.md)."""
    pick = {"longest": lambda c: max(c, key=len), "shortest": lambda c: min(c, key=len), "first": lambda c: c[0],
            "last": lambda c: c[-1], "median_length": lambda c: sorted(c, key=len)[len(c) // 2]}[ref_mode]
    scores = blender.rank_with_ref(INPUTS, CANDS, return_scores=True, ref_mode=ref_mode, mode=mode)
    ranks = blender.rank_with_ref(INPUTS, CANDS, ref_mode=ref_mode, mode=mode)
    assert scores.dtype == np.float64 and ranks.dtype == np.int32
    for j in range(3):
        refs = [pick(row) for row in CANDS]
        logits = blender.compare(INPUTS, refs, [row[j] for row in CANDS], mode=mode, return_logits=True)
        assert np.array_equal(scores[:, j], -logits.astype(np.float64))
    for row_scores, row_ranks in zip(scores, ranks):
        ordered = sorted(row_scores, reverse=True)
        assert row_ranks.tolist() == [ordered.index(s) + 1 for s in row_scores]
    given = [row[1] for row in CANDS]
    with_refs = blender.rank_with_ref(INPUTS, CANDS, return_scores=True, ref_candidates=given, mode=mode, ref_mode="bogus")
    logits = blender.compare(INPUTS, given, [row[0] for row in CANDS], mode=mode, return_logits=True)
    assert np.array_equal(with_refs[:, 0], -logits.astype(np.float64))


def test_rank_with_ref_keywords(blender: pairrm.Blender) -> None:
    default = blender.rank_with_ref(INPUTS, CANDS, return_scores=True)
    assert np.array_equal(blender.rank_with_ref(INPUTS, CANDS, return_scores=True, disable_tqdm=True), default)
    loaded = blender.engine.source_max_length
    assert np.array_equal(blender.rank_with_ref(INPUTS, CANDS, return_scores=True, source_max_length=loaded), default)
    with pytest.raises(TypeError, match=re.escape("unexpected keyword argument(s) policy")):
        blender.rank_with_ref(INPUTS, CANDS, policy="max_wins")


# -- rank: extra keyword arguments and per-call token limits -------------------------------------


def test_rank_ignores_other_keywords_with_a_warning(blender: pairrm.Blender) -> None:
    """llm_blender's rank reads only source_max_length / candidate_max_length from **rank_kwargs."""
    want = blender.rank(INPUTS, CANDS, return_scores=True)
    with pytest.warns(UserWarning, match=re.escape("rank(): keyword argument(s) mode, policy ignored")):
        got = blender.rank(INPUTS, CANDS, return_scores=True, policy="max_wins", mode="[A,B]")
    assert np.array_equal(got, want)


def test_rank_with_per_call_token_limits() -> None:
    """rank(..., source_max_length=, candidate_max_length=) as llm_blender: this call's limits
    (None or 0: the loaded ones). Other limits load the model again, once, with a warning."""
    blender = load("tiny-original", threads=1)
    limited = load("tiny-original", threads=1, source_maxlength=10, candidate_maxlength=5)
    long_inputs = ["tell me " * 8 + x for x in INPUTS]
    long_cands = [[c * 6 for c in row] for row in CANDS]
    want = limited.rank(long_inputs, long_cands, return_scores=True)
    default = blender.rank(long_inputs, long_cands, return_scores=True)
    assert not np.array_equal(want, default)  # the limits matter for these texts
    with pytest.warns(UserWarning, match="loads the model again with these limits"):
        got = blender.rank(long_inputs, long_cands, return_scores=True, source_max_length=10, candidate_max_length=5)
    assert np.array_equal(got, want)
    ctx = no_warnings()
    try:  # the copy is kept: no second load, no warning
        again = blender.rank(long_inputs, long_cands, return_scores=True, source_max_length=10, candidate_max_length=5)
        ref = blender.rank_with_ref(long_inputs, long_cands, return_scores=True, source_max_length=10, candidate_max_length=5)
        plain = blender.rank(long_inputs, long_cands, return_scores=True, source_max_length=None, candidate_max_length=0)
    finally:
        ctx.__exit__(None, None, None)
    assert np.array_equal(again, want)
    assert np.array_equal(ref, limited.rank_with_ref(long_inputs, long_cands, return_scores=True))
    assert np.array_equal(plain, default)
    assert (blender.engine.source_max_length, blender.engine.candidate_max_length) == (24, 16)


# -- compare: modes that take llm_blender's both-orders path --------------------------------------


@pytest.mark.parametrize("mode", ["longest", None, "both", "ab", "[A,A]", 3])
def test_other_compare_modes_compare_both_orders(blender: pairrm.Blender, mode: Any) -> None:
    a, b = [c[0] for c in CANDS], [c[1] for c in CANDS]
    want = blender.compare(INPUTS, a, b, return_logits=True)
    with pytest.warns(UserWarning, match=re.escape(f"compare(mode={mode!r}): not a compare mode")):
        got = blender.compare(INPUTS, a, b, return_logits=True, mode=mode)
    assert np.array_equal(got, want)
    conv_a = [[{"role": "USER", "content": x}, {"role": "ASSISTANT", "content": y}] for x, y in zip(INPUTS, a)]
    conv_b = [[{"role": "USER", "content": x}, {"role": "ASSISTANT", "content": y}] for x, y in zip(INPUTS, b)]
    with pytest.warns(UserWarning, match="compare_conversations"):
        conv = blender.compare_conversations(conv_a, conv_b, mode=mode)
    assert np.array_equal(conv, blender.compare_conversations(conv_a, conv_b))


def test_unknown_pairrm_cmp_type_means_full(blender: pairrm.Blender) -> None:
    for method in (blender.get_best_of_n, blender.get_worst_of_n):
        want = method(INPUTS, CANDS, pairrm_cmp_type="full", return_all=True)
        with pytest.warns(UserWarning, match="pairrm_cmp_type='max' is neither"):
            assert method(INPUTS, CANDS, pairrm_cmp_type="max", return_all=True) == want


# -- before loadranker ---------------------------------------------------------------------------


CONV = [[{"role": "USER", "content": "hi"}, {"role": "ASSISTANT", "content": "a"}]]


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.rank(["x"], [["a", "b"]]),
        lambda b: b.rank_with_ref(["x"], [["a", "b"]]),
        lambda b: b.compare(["x"], ["a"], ["b"]),
        lambda b: b.compare_conversations(CONV, CONV),
        lambda b: b.get_best_of_n(["x"], [["a", "b"]]),
        lambda b: b.get_worst_of_n(["x"], [["a", "b"]], pairrm_cmp_type="full"),
    ],
)
def test_before_loadranker_an_attribute_error_as_llm_blender(call: Any) -> None:
    """llm_blender raises AttributeError ('Blender' object has no attribute 'ranker', or
    'NoneType' object has no attribute 'ranker_type'); pairrm raises RankerNotLoadedError, both an
    AttributeError and a RuntimeError."""
    with pytest.raises(pairrm.RankerNotLoadedError, match=re.escape("call loadranker(")) as raised:
        call(pairrm.Blender())
    assert isinstance(raised.value, AttributeError) and isinstance(raised.value, RuntimeError)
    assert not hasattr(pairrm.Blender(), "engine")


def test_single_candidates_need_no_ranker() -> None:
    """As llm_blender, get_best_of_n / get_worst_of_n return at once when every input has one
    candidate, loaded or not."""
    blender = pairrm.Blender()
    assert blender.get_best_of_n(["x", "y"], [["a"], ["b"]]) == ["a", "b"]
    assert blender.get_worst_of_n(["x", "y"], [["a"], ["b"]], return_all=True) == [["a"], ["b"]]
    assert blender.get_best_of_n([], []) == []


# -- loadranker: RankerConfig fields -------------------------------------------------------------

#: llm_blender's RankerConfig defaults, as Blender(ranker_config=RankerConfig(...)) passes them.
RANKER_CONFIG = {
    "ranker_type": None, "model_type": None, "model_name": None, "cache_dir": None, "load_checkpoint": None,
    "source_maxlength": None, "candidate_maxlength": None, "n_tasks": 1, "num_pos": 1, "num_neg": 1,
    "sub_sampling_mode": "all_pair", "sub_sampling_ratio": 0.5, "loss_type": "instructgpt", "reduce_type": "linear",
    "inference_mode": "bubble", "drop_out": 0.05, "fp16": True, "device": None,
}


def test_loadranker_takes_ranker_config_fields() -> None:
    path = model_dir("tiny-original")
    blender = pairrm.Blender(use_tqdm=False)
    ctx = no_warnings()
    try:
        blender.loadranker(path, **dict(RANKER_CONFIG, load_checkpoint=path))
        blender.loadranker(path, ranker_type="pairranker", model_type="deberta", model_name="microsoft/deberta-v3-large")
        blender.loadranker(path, fp16=False, drop_out=0.0, inference_mode="full", n_tasks=1)
    finally:
        ctx.__exit__(None, None, None)
    want = load("tiny-original").rank(INPUTS, CANDS, return_scores=True)
    assert np.array_equal(blender.rank(INPUTS, CANDS, return_scores=True), want)
    blender.loadranker(path, **dict(RANKER_CONFIG, source_maxlength=12, candidate_maxlength=6))
    assert (blender.engine.source_max_length, blender.engine.candidate_max_length) == (12, 6)
    with pytest.warns(UserWarning, match=re.escape("ranker_type='deberta-rm', n_tasks=3 not used")):
        blender.loadranker(path, ranker_type="deberta-rm", n_tasks=3)
    with pytest.warns(UserWarning, match="load_checkpoint='/elsewhere' not used"):
        blender.loadranker(path, load_checkpoint="/elsewhere")
    with pytest.raises(TypeError, match=re.escape("unexpected keyword argument(s) beam")):
        blender.loadranker(path, beam=4)


def test_a_torch_device_of_the_cpu_is_silent() -> None:
    """TRL passes Accelerator().device, a torch.device: its str() is what counts."""

    class Device:
        def __init__(self, name: str) -> None:
            self.name = name

        def __str__(self) -> str:
            return self.name

    blender = pairrm.Blender(use_tqdm=False)
    ctx = no_warnings()
    try:
        blender.loadranker(model_dir("tiny-original"), device=Device("cpu"))
    finally:
        ctx.__exit__(None, None, None)
    with pytest.warns(UserWarning, match="device='cuda:0' is ignored"):
        blender.loadranker(model_dir("tiny-original"), device=Device("cuda:0"))


# -- the GenFuser --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda b: b.loadfuser("llm-blender/gen_fuser_3b"), "loadfuser"),
        (lambda b: b.fuse(["x"], [["a", "b"]], batch_size=2), "fuse"),
        (lambda b: b.rank_and_fuse(["x"], [["a", "b"]], return_scores=False, batch_size=2, top_k=3), "rank_and_fuse"),
    ],
)
def test_fuser_methods_name_the_alternative(call: Any, name: str) -> None:
    for blender in (pairrm.Blender(), load()):
        with pytest.raises(NotImplementedError, match=re.escape(f"{name}(): LLM-Blender's GenFuser")) as raised:
            call(blender)
        assert "AutoModelForSeq2SeqLM" in str(raised.value) and "original llm-blender" in str(raised.value)


# -- n_generate with a vLLM model ----------------------------------------------------------------


class FakeSamplingParams:
    def __init__(self, n: int, max_tokens: int) -> None:
        self.n, self.max_tokens = n, max_tokens
        self.temperature, self.top_p, self.top_k = 1.0, 1.0, -1


class FakeLLM:
    def __init__(self) -> None:
        self.calls: List[Any] = []

    def generate(self, prompts: List[str], sampling_params: FakeSamplingParams) -> Any:
        self.calls.append((list(prompts), vars(sampling_params).copy()))
        return [
            types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f"{p} #{k}") for k in range(sampling_params.n)])
            for p in prompts
        ]


def test_n_generate_with_a_vllm_model(blender: pairrm.Blender, monkeypatch: Any) -> None:
    """llm_blender samples from a vllm.LLM with SamplingParams(n, max_tokens) and every generate
    keyword SamplingParams has; pairrm does the same when vllm is imported."""
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = FakeLLM, FakeSamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    tokenizer = types.SimpleNamespace(model_max_length=77)
    model = FakeLLM()
    out = blender.n_generate(model, tokenizer, ["a", "b"], instructions=["i", "j"], n=3, max_new_tokens=9)
    assert out == [[f"i\na #{k}" for k in range(3)], [f"j\nb #{k}" for k in range(3)]]
    (prompts, params), = model.calls
    assert prompts == ["i\na", "j\nb"]
    assert params == {"n": 3, "max_tokens": 9, "temperature": 0.7, "top_p": 1.0, "top_k": -1}
    blender.n_generate(model, tokenizer, ["a"], n=2, sampling_mode="top_k_sampling")
    assert model.calls[-1][1] == {"n": 2, "max_tokens": 77, "temperature": 0.7, "top_p": 1.0, "top_k": 50}
    best = blender.best_of_n_generate(model, tokenizer, ["a"], n=4, return_all=True)
    assert sorted(best[0]) == [f"a #{k}" for k in range(4)]
