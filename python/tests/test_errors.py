"""Bad input raises TypeError / ValueError with a clear message; other misuse is refused."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

import pairrm
from conftest import load, model_dir


def test_not_loaded() -> None:
    with pytest.raises(RuntimeError, match=re.escape("call loadranker(")):
        pairrm.Blender().rank(["x"], [["a"]])
    # Also an AttributeError, as llm_blender's 'Blender' object has no attribute 'ranker'.
    with pytest.raises(AttributeError, match=re.escape("call loadranker(")):
        pairrm.Blender().rank(["x"], [["a"]])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda b: b.rank("hello", [["a"]]), TypeError, "inputs must be a list of str, not str"),
        (lambda b: b.rank(["x"], [["a", 3]]), TypeError, "candidates[0][1] must be a str, not int"),
        (lambda b: b.rank(["x"], ["ab"]), TypeError, "candidates[0] must be a list of str, not str"),
        (lambda b: b.rank([b"x"], [["a"]]), TypeError, "inputs[0] must be a str, not bytes"),
        (lambda b: b.rank(["x"], 5), TypeError, "candidates must be a list of lists of str, not int"),
        (lambda b: b.rank(["x"], [["a"]], instructions="i"), TypeError, "instructions must be a list of str"),
        (lambda b: b.rank(["x", "y"], [["a"]]), ValueError, "candidates has 1 items but inputs has 2"),
        (lambda b: b.rank(["x"], [["a"]], instructions=[]), ValueError, "instructions has 0 items but inputs has 1"),
        (lambda b: b.rank(["x", "y"], [["a"], []]), ValueError, "candidates[1] is empty"),
        (lambda b: b.rank(["x", "y"], [["a"], ["b", "c"]]), ValueError, "same number of candidates"),
        (lambda b: b.rank(["x"], [["a"]], source_max_length="long"), TypeError, "source_max_length must be an int"),
        (lambda b: b.rank_with_ref(["x"], [["a"]], beam=2), TypeError, "unexpected keyword argument(s) beam"),
        (lambda b: b.rank_with_ref(["x"], [["a"]], candidate_max_length=-1), ValueError, "candidate_max_length must be at least 1"),
        (lambda b: b.compare(["x"], ["a"], ["b", "c"]), ValueError, "candidates_B has 2 items but inputs has 1"),
        (lambda b: b.rank_with_ref(["x"], [["a"]], ref_mode="middle"), ValueError, "Unknown ref_mode: 'middle'"),
        (lambda b: b.rank_with_ref(["x"], [["a"]], ref_candidates=["r", "s"]), ValueError, "ref_candidates has 2"),
        (lambda b: b.get_worst_of_n(["x"], [[]]), ValueError, "candidates[0] is empty"),
        (lambda b: b.compare_conversations([[("USER", "hi")]], [[]]), TypeError, "conversations_a[0][0] must be a dict"),
        (lambda b: b.compare_conversations([[{"role": "USER"}]], [[]]), ValueError, "conversations_a[0][0] has no 'content' key"),
        (lambda b: b.compare_conversations([[{"role": "USER", "content": 1}]], [[]]), TypeError, "['content'] must be a str"),
        (lambda b: b.compare_conversations([[]], []), ValueError, "conversations_b has 0 items but conversations_a has 1"),
        (
            lambda b: b.compare_conversations(
                [[{"role": "USER", "content": "hi"}, {"role": "ASSISTANT", "content": "a"}]],
                [[{"role": "USER", "content": "hey"}, {"role": "ASSISTANT", "content": "b"}]],
            ),
            ValueError,
            "conversations[0]: invalid input: conversation_b[0].content: USER turns must be the same",
        ),
        (
            lambda b: b.compare_conversations(
                [[{"role": "USER", "content": "hi"}, {"role": "USER", "content": "a"}]],
                [[{"role": "USER", "content": "hi"}, {"role": "ASSISTANT", "content": "b"}]],
            ),
            ValueError,
            "conversation_a[1].role: expected ASSISTANT",
        ),
        (lambda b: b.n_generate(None, None, ["x"], n=0), ValueError, "n must be at least 1"),
        (lambda b: b.n_generate(None, None, ["x"], batch_size=1.5), TypeError, "batch_size must be an int"),
        (lambda b: b.n_generate(None, None, ["x"], instructions=["a", "b"]), ValueError, "instructions has 2 items"),
    ],
)
def test_bad_input(blender: pairrm.Blender, call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        call(blender)


def test_absurd_limits_are_refused(blender: pairrm.Blender) -> None:
    # A limit past 2^22 tokens is refused naming it, not loaded as a model that drops every candidate.
    huge = 18446744073709551615
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=f"candidate_max_length: {huge} is too large"):
        blender.rank(["x"], [["a", "b"]], candidate_max_length=huge)
    with pytest.raises(ValueError, match="source_max_length: 4194305 is too large"):
        pairrm.Engine(model_dir("tiny-original"), source_max_length=4194305)


def test_non_finite_results_raise(tmp_path: Path) -> None:
    # A NaN in the [CLS] row of the word embeddings (a lookup table, not scanned at load) reaches
    # every input: the call raises, naming the item, instead of returning NaN scores.
    for name in ["tiny-original", "tiny-backbone"]:
        shutil.copytree(model_dir(name), tmp_path / name)
    weights = tmp_path / "tiny-original" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    entry = json.loads(data[8 : 8 + n])["pretrained_model.embeddings.word_embeddings.weight"]
    at = 8 + n + entry["data_offsets"][0] + 4 * (32 + 3)
    data[at : at + 4] = struct.pack("<f", float("nan"))
    weights.write_bytes(bytes(data))
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker(str(tmp_path / "tiny-original"))
    with pytest.raises(RuntimeError, match="a non-finite number"):
        blender.rank(["x"], [["a", "b"]])


def test_bad_sampling_mode(blender: pairrm.Blender) -> None:
    class Tokenizer:
        model_max_length = 8

    with pytest.raises(ValueError, match="Unknown sampling_mode: 'beam'"):
        blender.n_generate(object(), Tokenizer(), ["x"], sampling_mode="beam")


def test_engine_checks_column_lengths(blender: pairrm.Blender) -> None:
    engine = blender.engine
    with pytest.raises(ValueError, match="candidates_a has 2 items but sources has 1"):
        engine.compare(["x"], ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="references has 0 items but sources has 1"):
        engine.rank_with_ref(["x"], [["a"]], references=[])
    with pytest.raises(ValueError, match=re.escape("inputs[1]: invalid input: candidates: must not be empty")):
        engine.rank(["x", "y"], [["a"], []])
    with pytest.raises(ValueError, match="unknown selection method"):
        engine.select(["x"], [["a"]], method="quick")
    with pytest.raises(ValueError, match="unknown compare mode"):  # Blender.compare maps llm_blender's modes first
        engine.compare(["x"], ["a"], ["b"], mode="[A,A]")
    with pytest.raises(ValueError, match="unknown reference mode"):
        engine.rank_with_ref(["x"], [["a"]], reference="middle")
    with pytest.raises(TypeError):
        engine.rank("x", [["a"]])


def test_load_errors(tmp_path: Path) -> None:
    blender = pairrm.Blender()
    with pytest.raises(TypeError, match="unexpected keyword argument.*fp32"):
        blender.loadranker(model_dir("tiny-original"), fp32=True)
    with pytest.raises(ValueError, match="threads must be at least 0"):
        blender.loadranker(model_dir("tiny-original"), threads=-1)
    with pytest.raises(ValueError, match="max_batch_tokens must be at least 1"):
        blender.loadranker(model_dir("tiny-original"), max_batch_tokens=0)
    with pytest.raises(ValueError, match="source_maxlength must be at least 1"):
        blender.loadranker(model_dir("tiny-original"), source_maxlength=-5)
    with pytest.raises(TypeError, match="candidate_maxlength must be an int"):
        blender.loadranker(model_dir("tiny-original"), candidate_maxlength="long")
    with pytest.raises(ValueError, match="candidate_max_length"):  # below the engine's minimum
        blender.loadranker(model_dir("tiny-original"), candidate_maxlength=1)
    with pytest.raises(ValueError, match="max_batch_tokens must be at least 1"):  # the engine's own check
        pairrm.Engine(model_dir("tiny-original"), max_batch_tokens=0)
    with pytest.raises(ValueError, match="no such directory, and not a hub repo id"):
        blender.loadranker(str(tmp_path / "missing" / "model"))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        blender.loadranker(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"ranker_type": "pairranker", "model_name": "../nowhere"}))
    with pytest.raises((ValueError, FileNotFoundError), match="loading model"):
        blender.loadranker(str(tmp_path))
    with pytest.raises(RuntimeError, match="no ranker loaded"):
        blender.engine  # nothing was loaded by the failed calls


def test_hub_model_missing_from_the_cache(tmp_path: Path) -> None:
    with pytest.raises(pairrm.NotInCacheError) as info:
        pairrm.Blender().loadranker("llm-blender/PairRM", cache_dir=str(tmp_path), download=False)
    err = info.value
    assert isinstance(err, FileNotFoundError)
    assert (err.repo, err.revision, err.cache_dir) == ("llm-blender/PairRM", "main", str(tmp_path))
    assert err.missing == ["config.json"]
    assert "not in the Hugging Face cache" in str(err)


def test_device_is_accepted_with_a_warning() -> None:
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker(model_dir("tiny-original"), device="cpu")
    with pytest.warns(UserWarning, match="device='cuda:0' is ignored"):
        blender.loadranker(model_dir("tiny-original"), device="cuda:0")
    assert blender.rank(["x"], [["a", "b"]]).shape == (1, 2)


def test_bad_seed() -> None:
    blender = load()
    blender.seed = -1
    with pytest.raises(ValueError, match="seed must be at least 0"):
        blender.get_best_of_n(["x"], [["a", "b"]])


def test_pickling_is_refused(blender: pairrm.Blender) -> None:
    with pytest.raises(TypeError, match="build one in each worker process"):
        pickle.dumps(blender)


def test_a_blender_inherited_through_fork_refuses_to_run() -> None:
    blender = load()
    blender._pid = -1  # as in a child forked after loading
    with pytest.raises(RuntimeError, match="inherited through fork"):
        blender.rank(["x"], [["a"]])


def test_judge_errors() -> None:
    judge = pairrm.PairRMJudge(model_dir("tiny-original"), threads=1)
    with pytest.raises(ValueError, match=re.escape("exactly 2 completions per prompt; completions[1] has 3")):
        judge.judge(["p", "q"], [["a", "b"], ["a", "b", "c"]])
    with pytest.raises(ValueError, match="completions has 1 items but prompts has 2"):
        judge.judge(["p", "q"], [["a", "b"]])
    with pytest.raises(ValueError, match="temperature must be positive"):
        judge.judge(["p"], [["a", "b"]], return_scores=True, temperature=0)
    with pytest.raises(TypeError, match="temperature must be a number"):
        judge.judge(["p"], [["a", "b"]], temperature="hot")
