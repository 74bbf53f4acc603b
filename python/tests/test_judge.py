"""The TRL-style judge: ranks of the first completion, or its softmax probability."""

from __future__ import annotations

import numpy as np
import pytest

import pairrm
from conftest import model_dir

PROMPTS = ["Translate 'hello' to French", "What's the capital of Japan?", "2+2?", "Say hi", "Name a color"]
PAIRS = [["Bonjour", "Salut"], ["Kyoto", "Tokyo"], ["4", "five"], ["hi", "hi"], ["blue", "a color"]]


@pytest.fixture(scope="module")
def judge() -> pairrm.PairRMJudge:
    return pairrm.PairRMJudge(model_dir("tiny-original"), threads=1)


def test_ranks_of_the_first_completion(judge: pairrm.PairRMJudge) -> None:
    ranks = judge.blender.rank(PROMPTS, PAIRS)
    want = (ranks[:, 0] - 1).tolist()
    assert judge.judge(PROMPTS, PAIRS, shuffle_order=False) == want
    assert all(type(x) is int and x in (0, 1) for x in want)
    assert want[3] == 0  # identical completions tie: both rank 1, so the first is "preferred"
    np.random.seed(0)
    assert judge.judge(PROMPTS, PAIRS) == want  # shuffling changes nothing: both orders are scored


def test_soft_judge(judge: pairrm.PairRMJudge) -> None:
    scores = judge.blender.rank(PROMPTS, PAIRS, return_scores=True)
    for temperature in (1.0, 0.5, 3):
        scaled = scores / np.float32(temperature)
        e = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        want = (e / e.sum(axis=-1, keepdims=True))[:, 0].tolist()
        got = judge.judge(PROMPTS, PAIRS, shuffle_order=False, return_scores=True, temperature=temperature)
        assert got == want
        np.random.seed(1)
        assert judge.judge(PROMPTS, PAIRS, return_scores=True, temperature=temperature) == want
    probs = judge.judge(PROMPTS, PAIRS, return_scores=True)
    assert all(type(p) is float and 0 < p < 1 for p in probs)
    assert probs[3] == 0.5
    ranks = judge.judge(PROMPTS, PAIRS)
    assert [int(p < 0.5) for p in probs] == ranks


def test_shuffling_draws_from_numpys_global_generator(judge: pairrm.PairRMJudge) -> None:
    np.random.seed(3)
    judge.judge(PROMPTS, PAIRS)
    after_judge = np.random.random()
    np.random.seed(3)
    np.random.choice([True, False], size=len(PROMPTS))  # what TRL draws
    assert np.random.random() == after_judge
    np.random.seed(3)
    judge.judge(PROMPTS, PAIRS, shuffle_order=False)
    np.random.seed(3)
    assert np.random.random() == np.random.RandomState(3).random_sample()


def test_empty_and_tuple_input(judge: pairrm.PairRMJudge) -> None:
    assert judge.judge([], []) == []
    assert judge.judge(("2+2?",), (("4", "five"),), shuffle_order=False) == judge.judge(["2+2?"], [["4", "five"]], shuffle_order=False)
