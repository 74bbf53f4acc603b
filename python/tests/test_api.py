"""llm_blender's API: signatures, return types (shapes, dtypes), and results that never depend
on batching, order, threads or input container types."""

from __future__ import annotations

import inspect
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import pairrm
from conftest import goldens, load

#: llm_blender 0.0.2's ``Blender`` signatures (self left out): name, kind, default.
P, K = "POSITIONAL_OR_KEYWORD", "VAR_KEYWORD"
_ = inspect.Parameter.empty
LLM_BLENDER: Dict[str, List[Tuple[str, str, Any]]] = {
    "loadranker": [("ranker_path", P, _), ("device", P, None), ("kwargs", K, _)],
    "rank": [
        ("inputs", P, _), ("candidates", P, _), ("instructions", P, None), ("return_scores", P, False),
        ("batch_size", P, 8), ("disable_tqdm", P, False), ("rank_kwargs", K, _),
    ],
    "rank_with_ref": [
        ("inputs", P, _), ("candidates", P, _), ("instructions", P, None), ("return_scores", P, False),
        ("batch_size", P, 8), ("ref_mode", P, "longest"), ("ref_candidates", P, None), ("rank_kwargs", K, _),
    ],
    "compare": [
        ("inputs", P, _), ("candidates_A", P, _), ("candidates_B", P, _), ("instructions", P, None),
        ("batch_size", P, 4), ("return_logits", P, False), ("mode", P, "[A,B]+[B,A]"), ("disable_tqdm", P, False),
    ],
    "compare_conversations": [
        ("conversations_a", P, _), ("conversations_b", P, _), ("batch_size", P, 4), ("return_logits", P, False),
        ("mode", P, "[A,B]+[B,A]"),
    ],
    "get_best_of_n": [
        ("inputs", P, _), ("candidates", P, _), ("instructions", P, None), ("pairrm_cmp_type", P, "bubble"),
        ("return_all", P, False), ("batch_size", P, 8),
    ],
    "n_generate": [
        ("model", P, _), ("model_tokenizer", P, _), ("inputs", P, _), ("instructions", P, None), ("n", P, 5),
        ("sampling_mode", P, "top_p_sampling"), ("batch_size", P, 4), ("generate_kwargs", K, _),
    ],
    "best_of_n_generate": [
        ("model", P, _), ("model_tokenizer", P, _), ("inputs", P, _), ("instructions", P, None), ("n", P, 5),
        ("sampling_mode", P, "top_p_sampling"), ("batch_size", P, 4), ("pairrm_cmp_type", P, "bubble"),
        ("return_all", P, False), ("generate_kwargs", K, _),
    ],
}
LLM_BLENDER["get_worst_of_n"] = LLM_BLENDER["get_best_of_n"]
#: The GenFuser methods: same signatures, NotImplementedError (tested in test_upstream_calls.py).
LLM_BLENDER["loadfuser"] = [("fuser_path", P, _), ("device", P, None), ("kwargs", K, _)]
LLM_BLENDER["fuse"] = [
    ("inputs", P, _), ("candidates", P, _), ("instructions", P, None), ("batch_size", P, 4), ("generate_kwargs", K, _),
]
LLM_BLENDER["rank_and_fuse"] = [
    ("inputs", P, _), ("candidates", P, _), ("instructions", P, None), ("return_scores", P, False),
    ("batch_size", P, 4), ("top_k", P, 3), ("generate_kwargs", K, _),
]
#: TRL's ``PairRMJudge.judge``.
TRL_JUDGE = [
    ("prompts", P, _), ("completions", P, _), ("shuffle_order", P, True), ("return_scores", P, False),
    ("temperature", P, 1.0),
]


def params(fn: Any) -> List[Tuple[str, str, Any]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind.name, p.default) for p in sig.parameters.values() if p.name != "self"]


@pytest.mark.parametrize("name", sorted(LLM_BLENDER))
def test_signatures_match_llm_blender(name: str) -> None:
    assert params(getattr(pairrm.Blender, name)) == LLM_BLENDER[name]
    assert getattr(pairrm.Blender, name).__doc__


def test_signatures_match_the_installed_llm_blender() -> None:
    llm_blender = pytest.importorskip("llm_blender", reason="llm_blender not installed: compared with the recorded signatures only")
    if issubclass(llm_blender.Blender, pairrm.Blender):
        pytest.skip("llm_blender is pairrm's compatibility distribution: compared with the recorded signatures only")
    for name in LLM_BLENDER:
        assert params(getattr(pairrm.Blender, name)) == params(getattr(llm_blender.Blender, name)), name


def test_judge_signature_matches_trl() -> None:
    assert params(pairrm.PairRMJudge.judge) == TRL_JUDGE
    assert [p[0] for p in params(pairrm.PairRMJudge.__init__)] == ["model", "loadranker_kwargs"]
    assert inspect.signature(pairrm.PairRMJudge.__init__).parameters["model"].default == "llm-blender/PairRM"


INPUTS = ["hello!", "What is 2+2?", "Tell me a story."]
CANDS = [["hi!", "f**k off!", "hey"], ["4", "5", "four"], ["Once upon a time.", "No.", "A fox ran."]]


def test_return_types(blender: pairrm.Blender) -> None:
    ranks = blender.rank(INPUTS, CANDS)
    assert isinstance(ranks, np.ndarray) and ranks.dtype == np.int32 and ranks.shape == (3, 3)
    assert sorted(ranks[0].tolist()) in ([1, 2, 3], [1, 1, 3], [1, 2, 2], [1, 1, 1])
    scores = blender.rank(INPUTS, CANDS, return_scores=True)
    assert scores.dtype == np.float32 and scores.shape == (3, 3)
    ref_ranks = blender.rank_with_ref(INPUTS, CANDS)
    assert ref_ranks.dtype == np.int32 and ref_ranks.shape == (3, 3)
    ref_scores = blender.rank_with_ref(INPUTS, CANDS, return_scores=True)
    assert ref_scores.dtype == np.float64 and ref_scores.shape == (3, 3)
    a, b = [c[0] for c in CANDS], [c[1] for c in CANDS]
    better = blender.compare(INPUTS, a, b)
    assert better.dtype == np.bool_ and better.shape == (3,)
    logits = blender.compare(INPUTS, a, b, return_logits=True)
    assert logits.dtype == np.float32 and logits.shape == (3,)
    assert (better == (logits > 0)).all()
    conv_a = [[{"role": "USER", "content": x}, {"role": "ASSISTANT", "content": c[0]}] for x, c in zip(INPUTS, CANDS)]
    conv_b = [[{"role": "USER", "content": x}, {"role": "ASSISTANT", "content": c[1]}] for x, c in zip(INPUTS, CANDS)]
    conv = blender.compare_conversations(conv_a, conv_b)
    assert conv.dtype == np.bool_ and conv.shape == (3,)
    conv_logits = blender.compare_conversations(conv_a, conv_b, return_logits=True)
    assert conv_logits.dtype == np.float32 and conv_logits.shape == (3,)
    for method in (blender.get_best_of_n, blender.get_worst_of_n):
        for cmp in ("bubble", "full"):
            one = method(INPUTS, CANDS, pairrm_cmp_type=cmp)
            assert isinstance(one, list) and all(type(x) is str for x in one) and len(one) == 3
            everything = method(INPUTS, CANDS, pairrm_cmp_type=cmp, return_all=True)
            assert [sorted(x) for x in everything] == [sorted(c) for c in CANDS]
            assert [x[0] for x in everything] == one


def test_full_selection_follows_rank(blender: pairrm.Blender) -> None:
    ranks = blender.rank(INPUTS, CANDS)
    best = blender.get_best_of_n(INPUTS, CANDS, pairrm_cmp_type="full", return_all=True)
    worst = blender.get_worst_of_n(INPUTS, CANDS, pairrm_cmp_type="full", return_all=True)
    for r, c, b, w in zip(ranks, CANDS, best, worst):
        order = sorted(range(len(c)), key=lambda i: (r[i], i))
        assert b == [c[i] for i in order]
        assert w == [c[i] for i in sorted(range(len(c)), key=lambda i: (-r[i], i))]


def test_empty_inputs(blender: pairrm.Blender) -> None:
    assert blender.rank([], []).shape == (0, 0)
    assert blender.rank_with_ref([], [], return_scores=True).shape == (0, 0)
    assert blender.compare([], [], []).shape == (0,)
    assert blender.compare_conversations([], []).shape == (0,)
    assert blender.get_best_of_n([], []) == []


def test_instructions_are_prepended_without_separator(blender: pairrm.Blender) -> None:
    with_instruction = blender.compare(["x"], ["a"], ["b"], instructions=["Do: "], return_logits=True)
    joined = blender.compare(["Do: x"], ["a"], ["b"], return_logits=True)
    assert with_instruction.tobytes() == joined.tobytes()


def test_ba_mode_keeps_a_better_positive(blender: pairrm.Blender) -> None:
    ab = blender.compare(INPUTS, [c[1] for c in CANDS], [c[0] for c in CANDS], mode="[A,B]", return_logits=True)
    ba = blender.compare(INPUTS, [c[0] for c in CANDS], [c[1] for c in CANDS], mode="[B,A]", return_logits=True)
    assert (ba == -ab).all()  # [B,A] of (A, B) is -logit(B, A)


def test_single_candidates_need_no_pass(blender: pairrm.Blender) -> None:
    assert blender.get_best_of_n(["a", "b"], [["x"], ["y"]]) == ["x", "y"]
    assert blender.get_worst_of_n(["a"], [["x"]], return_all=True) == [["x"]]
    assert blender.rank(["a"], [["x"]]).tolist() == [[1]]


def test_ragged_candidates_in_best_of_n(blender: pairrm.Blender) -> None:
    together = blender.get_best_of_n(INPUTS[:2], [CANDS[0], CANDS[1][:2]], return_all=True)
    assert together == [blender.get_best_of_n([INPUTS[0]], [CANDS[0]], return_all=True)[0],
                        blender.get_best_of_n([INPUTS[1]], [CANDS[1][:2]], return_all=True)[0]]


def test_bubble_order_is_seeded(blender: pairrm.Blender) -> None:
    cands = [[f"candidate {i}" for i in range(6)]]
    orders = set()
    for seed in range(6):
        seeded = pairrm.Blender(use_tqdm=False, seed=seed)
        seeded.loadranker(blender.engine.model_id, threads=1)
        first = seeded.get_best_of_n(["q"], cands, return_all=True)
        assert seeded.get_best_of_n(["q"], cands, return_all=True) == first
        orders.add(tuple(first[0]))
    assert len(orders) > 1


def test_accepts_tuples_and_numpy_arrays(blender: pairrm.Blender) -> None:
    want = blender.rank(INPUTS, CANDS, return_scores=True)
    got = blender.rank(np.array(INPUTS), np.array(CANDS), return_scores=True)
    assert got.tobytes() == want.tobytes()
    got = blender.rank(tuple(INPUTS), tuple(tuple(c) for c in CANDS), return_scores=True)
    assert got.tobytes() == want.tobytes()


def test_results_do_not_depend_on_batching_order_or_threads() -> None:
    g = goldens("tiny-original")
    single = load(threads=1)
    small_batches = load(threads=2, max_batch_tokens=1)
    cases = g["rank"]
    cols = ([r["source"] for r in cases], [r["candidates"] for r in cases], [r["instruction"] for r in cases])
    alone = [single.engine.rank([s], [c], [i]) for s, c, i in zip(*cols)]
    together = small_batches.engine.rank(*cols)
    reversed_ = single.engine.rank(*(list(reversed(col)) for col in cols))
    for k, (scores, ranks) in enumerate(alone):
        assert np.array(together[0][k], np.float32).tobytes() == np.array(scores[0], np.float32).tobytes()
        assert together[1][k] == ranks[0]
        assert np.array(reversed_[0][-1 - k], np.float32).tobytes() == np.array(scores[0], np.float32).tobytes()
    cmp = g["cases"]
    cols = ([c["source"] for c in cmp], [c["a"] for c in cmp], [c["b"] for c in cmp], [c["instruction"] for c in cmp])
    batch = single.compare(*cols, return_logits=True, batch_size=1)
    assert small_batches.compare(*cols, return_logits=True, batch_size=64).tobytes() == batch.tobytes()
    for k in range(len(cmp)):
        one = single.compare(*([col[k]] for col in cols), return_logits=True)
        assert one.tobytes() == batch[k : k + 1].tobytes()


def test_engine_properties(blender: pairrm.Blender) -> None:
    engine = blender.engine
    assert isinstance(engine, pairrm.Engine)
    assert engine.layout == "original" and engine.threads >= 1
    assert engine.source_max_length == 24 and engine.candidate_max_length == 16  # tiny-original's config
    assert "tiny-original" in repr(engine) and "tiny-original" in repr(blender)
    limited = load(source_maxlength=10, candidate_maxlength=5)
    assert (limited.engine.source_max_length, limited.engine.candidate_max_length) == (10, 5)
    assert limited.rank(["q"], [["a", "b"]], source_max_length=10, candidate_max_length=None).shape == (1, 2)
    assert load("tiny-hf").engine.layout == "hf"
    assert pairrm.__version__


def test_half_precision_weights() -> None:
    exact = load()
    assert exact.engine.dtype == "f32"
    half = load(dtype="f16")
    assert half.engine.dtype == "f16"
    args = (["What is 2+2?", "Name a colour"], ["4", "red"], ["five", "the sky"])
    got = half.compare(*args, return_logits=True)
    want = exact.compare(*args, return_logits=True)
    assert np.max(np.abs(got - want)) <= 1e-2  # the tolerance the Rust tests assert on all fixtures
    with pytest.raises(ValueError, match="dtype"):
        load(dtype="int8")


def test_bf16_precision() -> None:
    exact = load()
    assert exact.engine.precision == "f32" and exact.engine.kernels["linear"] in ("f32-avx512", "f32-gemm")
    fast = load(precision="bf16")
    assert fast.engine.precision == "bf16" and fast.engine.dtype == "f32"
    assert fast.engine.kernels["linear"].startswith("bf16-")
    assert fast.engine.kernels["level"] in ("scalar", "avx2", "avx512")
    args = (["What is 2+2?", "Name a colour"], ["4", "red"], ["five", "the sky"])
    got = fast.compare(*args, return_logits=True)
    want = exact.compare(*args, return_logits=True)
    assert np.max(np.abs(got - want)) <= 0.2  # the bound the Rust tests assert on all fixtures
    # Same pair, same bits, whatever the batch.
    for k in range(2):
        one = fast.compare(*([a[k]] for a in args), return_logits=True)
        assert one.tobytes() == got[k : k + 1].tobytes()
    with pytest.raises(ValueError, match="precision"):
        load(precision="fp8")
    with pytest.raises(ValueError, match="dtype"):
        load(precision="bf16", dtype="f16")
