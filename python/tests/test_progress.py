"""Progress bars: tqdm when importable, a plain bar on a terminal otherwise, none when disabled;
the engine reports (0, planned) first and (done, done) last."""

from __future__ import annotations

import io
import sys
from typing import Any, List, Optional, Tuple

import pytest

import pairrm
import pairrm.blender
from conftest import load


class Recorder:
    instances: List["Recorder"] = []

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.calls: List[Tuple[int, int]] = []
        self.closed = False
        Recorder.instances.append(self)

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def recorded(monkeypatch: Any) -> List[Recorder]:
    Recorder.instances = []

    def make_bar(desc: str, enabled: bool, unit: str = "pass") -> Optional[Recorder]:
        return Recorder(desc) if enabled else None

    monkeypatch.setattr(pairrm.blender, "make_bar", make_bar)
    return Recorder.instances


def test_bars_count_forward_passes(recorded: List[Recorder]) -> None:
    blender = load(max_batch_tokens=1)  # one pass per batch: many progress steps
    blender.use_tqdm = True
    cands = [["a", "bb", "ccc"], ["d", "ee", "fff"]]
    blender.rank(["x", "y"], cands)
    blender.compare(["x", "y"], ["a", "b"], ["c", "d"])
    blender.compare(["x"], ["a"], ["c"], mode="[A,B]")
    blender.get_best_of_n(["x", "y"], cands)
    blender.get_worst_of_n(["x", "y"], cands, pairrm_cmp_type="full")
    blender.rank_with_ref(["x", "y"], cands)
    turns = [{"role": "USER", "content": "hi"}, {"role": "ASSISTANT", "content": "yo"}]
    blender.compare_conversations([turns], [turns[:1] + [{"role": "ASSISTANT", "content": "hey"}]])
    planned = [12, 4, 1, 8, 12, 12, 2]
    descs = ["Ranking candidates", "Comparing candidates", "Comparing candidates", "Selecting candidates",
             "Selecting candidates", "Ranking with reference", "Comparing conversations"]
    assert [r.desc for r in recorded] == descs
    for bar, total in zip(recorded, planned):
        assert bar.closed
        assert bar.calls[0] == (0, total)
        done = [d for d, _ in bar.calls]
        assert done == sorted(done)
        assert all(t == total for _, t in bar.calls[:-1])
    # Identical pairs are scored once: rank_with_ref compares the reference with itself.
    assert recorded[5].calls[-1] == (10, 10)
    assert recorded[0].calls[-1] == (12, 12)


def test_bars_can_be_turned_off(recorded: List[Recorder]) -> None:
    blender = load()
    blender.use_tqdm = True
    blender.rank(["x"], [["a", "b"]], disable_tqdm=True)
    blender.compare(["x"], ["a"], ["b"], disable_tqdm=True)
    assert recorded == []
    blender.use_tqdm = False
    blender.rank(["x"], [["a", "b"]])
    blender.get_best_of_n(["x"], [["a", "b"]])
    assert recorded == []


def test_tqdm_bar(capsys: Any) -> None:
    pytest.importorskip("tqdm", reason="tqdm not installed")
    blender = load()
    blender.use_tqdm = True
    blender.rank(["x", "y"], [["a", "bb", "ccc"], ["d", "ee", "fff"]])
    err = capsys.readouterr().err
    assert "Ranking candidates" in err and "12/12" in err


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_bar_without_tqdm(monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    blender = load()
    blender.use_tqdm = True
    blender.rank(["x", "y"], [["a", "bb", "ccc"], ["d", "ee", "fff"]])
    out = terminal.getvalue()
    assert out.startswith("\rRanking candidates: [") and "12/12 passes" in out and out.endswith("\n")
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    blender.rank(["x"], [["a", "b"]])
    assert piped.getvalue() == ""  # not a terminal: no bar


def test_a_raising_progress_callback_stops_the_work(blender: pairrm.Blender) -> None:
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if done > 0:
            raise LookupError("stop here")

    slow = load(max_batch_tokens=1, threads=1)
    cands = [[f"candidate {i}" for i in range(40)]]
    with pytest.raises(LookupError, match="stop here"):
        slow.engine.rank(["x"], cands, progress=progress)
    assert calls[0] == 0
    with pytest.raises(ZeroDivisionError):
        slow.engine.compare(["x"], ["a"], ["b"], progress=lambda done, total: 1 / 0)


def test_no_bar_without_work(capsys: Any) -> None:
    pytest.importorskip("tqdm", reason="tqdm not installed")
    blender = load()
    blender.use_tqdm = True
    assert blender.get_best_of_n(["x", "y"], [["only"], ["one"]]) == ["only", "one"]
    assert blender.rank([], []).shape == (0, 0)
    assert capsys.readouterr().err == ""


def test_generation_bar_counts_prompts(recorded: List[Recorder]) -> None:
    from test_generate import ToyModel, ToyTokenizer

    blender = load()
    blender.use_tqdm = True
    blender.n_generate(ToyModel(), ToyTokenizer(), ["a", "b", "c"], n=2, batch_size=2)
    assert [r.desc for r in recorded] == ["Sampling generations"]
    assert recorded[0].calls == [(0, 3), (2, 3), (3, 3)] and recorded[0].closed
