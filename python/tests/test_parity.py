"""Numbers: the reference's goldens (llm-blender 0.0.2) and the `pairrm` CLI, on the fixtures."""

from __future__ import annotations

import json
import subprocess
from typing import Any, Dict, List

import numpy as np
import pytest

import pairrm
from conftest import MODELS, SPM_MODEL, TINY, close, goldens, load, make_hub_cache, model_dir


@pytest.fixture(scope="module", params=TINY)
def case(request: Any) -> Any:
    return request.param, load(request.param), goldens(request.param)


def test_compare_all_modes(case: Any) -> None:
    _, blender, g = case
    cases = g["cases"]
    args = ([c["source"] for c in cases], [c["a"] for c in cases], [c["b"] for c in cases])
    instructions = [c["instruction"] for c in cases]
    ab = blender.compare(*args, instructions=instructions, mode="[A,B]", return_logits=True)
    ba = blender.compare(*args, instructions=instructions, mode="[B,A]", return_logits=True)
    both = blender.compare(*args, instructions=instructions, return_logits=True)
    better = blender.compare(*args, instructions=instructions)
    for i, c in enumerate(cases):
        assert close(ab[i], c["logit_ab"]), (i, ab[i], c["logit_ab"])
        # One sign convention: [B,A] gives -logit(B,A) (the reference returns logit(B,A)).
        assert close(ba[i], -c["logit_ba_reference"]), (i, ba[i], c["logit_ba_reference"])
        assert close(both[i], c["logit_both"]), (i, both[i], c["logit_both"])
        assert better[i] == (both[i] > 0)


def test_encode_matches_reference_ids(case: Any) -> None:
    _, blender, g = case
    for c in g["cases"]:
        assert blender.engine.encode(c["source"], c["a"], c["b"], c["instruction"]) == c["input_ids"]


def test_rank_scores_ranks_and_full_selection(case: Any) -> None:
    _, blender, g = case
    for r in g["rank"]:
        args = ([r["source"]], [r["candidates"]])
        scores = blender.rank(*args, instructions=[r["instruction"]], return_scores=True)[0]
        ranks = blender.rank(*args, instructions=[r["instruction"]])[0]
        assert all(close(s, w) for s, w in zip(scores, r["scores"])), (scores, r["scores"])
        assert ranks.tolist() == r["ranks"]
        best = blender.get_best_of_n(*args, instructions=[r["instruction"]], pairrm_cmp_type="full")
        worst = blender.get_worst_of_n(*args, instructions=[r["instruction"]], pairrm_cmp_type="full")
        if "best_full" in r:  # recorded for more than one candidate
            assert best == [r["best_full"]] and worst == [r["worst_full"]]
        else:
            assert best == worst == r["candidates"]


def test_rank_with_ref(case: Any) -> None:
    _, blender, g = case
    for r in g["rank_with_ref"]:
        given = r["ref_mode"] == "given"
        kwargs: Dict[str, Any] = dict(
            instructions=[r["instruction"]],
            ref_mode="longest" if given else r["ref_mode"],
            ref_candidates=[r["reference"]] if given else None,
        )
        scores = blender.rank_with_ref([r["source"]], [r["candidates"]], return_scores=True, **kwargs)[0]
        ranks = blender.rank_with_ref([r["source"]], [r["candidates"]], **kwargs)[0]
        assert all(close(s, w) for s, w in zip(scores, r["scores"])), (r["ref_mode"], scores, r["scores"])
        assert ranks.tolist() == r["ranks"]


def test_compare_conversations(case: Any) -> None:
    _, blender, g = case
    convs = g["conversations"]
    logits = blender.compare_conversations(
        [c["conversation_a"] for c in convs], [c["conversation_b"] for c in convs], return_logits=True
    )
    assert all(close(x, c["logit_both"]) for x, c in zip(logits, convs))


def test_real_tokenizer_through_the_hub_cache(tmp_path: Any, monkeypatch: Any) -> None:
    """The realtok checkpoint (real deberta-v3 tokenizer) by hub id from an offline HF cache."""
    backbone, ck = MODELS / "realtok-backbone", MODELS / "realtok-original"
    cache = make_hub_cache(
        tmp_path,
        {
            "microsoft/deberta-v3-large": {
                "config.json": backbone / "config.json",
                "tokenizer_config.json": backbone / "tokenizer_config.json",
                "spm.model": SPM_MODEL,
            },
            "test/realtok-pairrm": {"config.json": ck / "config.json", "model.safetensors": ck / "model.safetensors"},
        },
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker("test/realtok-pairrm", download=False)
    g = goldens("realtok-original")
    cases = g["cases"]
    logits = blender.compare(
        [c["source"] for c in cases],
        [c["a"] for c in cases],
        [c["b"] for c in cases],
        instructions=[c["instruction"] for c in cases],
        mode="[A,B]",
        return_logits=True,
    )
    for x, c in zip(logits, cases):
        assert close(x, c["logit_ab"]), (x, c["logit_ab"])
        assert blender.engine.encode(c["source"], c["a"], c["b"], c["instruction"]) == c["input_ids"]


# -- the CLI ---------------------------------------------------------------------------------


def run_cli(cli: str, args: List[str], lines: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = subprocess.run(
        [cli, *args, "--no-progress"],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.mark.parametrize("name", TINY)
def test_same_bits_as_the_cli(cli: str, name: str) -> None:
    blender, g = load(name), goldens(name)
    model = ["--model", model_dir(name)]
    cases = g["cases"]
    lines = [{"instruction": c["instruction"], "source": c["source"], "a": c["a"], "b": c["b"]} for c in cases]
    cols = ([c["source"] for c in cases], [c["a"] for c in cases], [c["b"] for c in cases])
    for cli_mode, mode in (("ab", "[A,B]"), ("ba", "[B,A]"), ("both", "[A,B]+[B,A]")):
        want = np.array([r["logit"] for r in run_cli(cli, ["compare", *model, "--mode", cli_mode], lines)], np.float32)
        got = blender.compare(*cols, instructions=[c["instruction"] for c in cases], mode=mode, return_logits=True)
        assert got.tobytes() == want.tobytes(), mode

    ranks = g["rank"]
    lines = [{"instruction": r["instruction"], "source": r["source"], "candidates": r["candidates"]} for r in ranks]
    cli_rank = run_cli(cli, ["rank", *model], lines)
    cli_best = run_cli(cli, ["rank", *model, "--strategy", "bubble", "--seed", "0"], lines)
    cli_worst = run_cli(cli, ["rank", *model, "--strategy", "bubble", "--seed", "0", "--worst"], lines)
    cli_ref = run_cli(cli, ["rank", *model, "--reference", "median"], lines)
    for r, want, best, worst, ref in zip(ranks, cli_rank, cli_best, cli_worst, cli_ref):
        args = ([r["source"]], [r["candidates"]])
        kw = dict(instructions=[r["instruction"]])
        assert blender.rank(*args, return_scores=True, **kw)[0].tobytes() == np.array(want["scores"], np.float32).tobytes()
        assert blender.rank(*args, **kw)[0].tolist() == want["ranks"]
        assert blender.get_best_of_n(*args, return_all=True, **kw)[0] == [r["candidates"][i] for i in best["order"]]
        assert blender.get_worst_of_n(*args, return_all=True, **kw)[0] == [r["candidates"][i] for i in worst["order"]]
        got = blender.rank_with_ref(*args, ref_mode="median_length", return_scores=True, **kw)[0]
        assert got.astype(np.float32).tobytes() == np.array(ref["scores"], np.float32).tobytes()

    convs = g["conversations"]
    lines = [{"conversation_a": c["conversation_a"], "conversation_b": c["conversation_b"]} for c in convs]
    want = np.array([r["logit"] for r in run_cli(cli, ["compare", *model], lines)], np.float32)
    got = blender.compare_conversations([c["conversation_a"] for c in convs], [c["conversation_b"] for c in convs], return_logits=True)
    assert got.tobytes() == want.tobytes()
