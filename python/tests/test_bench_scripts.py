"""The benchmark scripts' logic (bench/side_by_side.py, bench/summarize.py): which pairrm tiers they
find in the CLI's help, how they score agreement, and that every rendered table names its CPU. No
timing here: performance is measured by the benchmarks themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import side_by_side  # noqa: E402

HELP_WITH_PRECISION = """Measure throughput

Usage: pairrm bench [OPTIONS] --model <MODEL>

Options:
      --threads <THREADS>        Worker threads (0: one per core) [default: 0]
      --precision <PRECISION>    Arithmetic [default: f32] [possible values: f32, bf16, int8]
      --dtype <DTYPE>            Weight storage: `f32` (exact), `f16` or `bf16`. Arithmetic stays f32 [default: f32]
  -h, --help                     Print help
"""


class Args:
    def __init__(self, tiers="auto", dtype=None):
        self.pairrm_tiers = tiers
        self.pairrm_dtype = dtype


def fake_help(monkeypatch, text):
    class Done:
        stdout = text

    monkeypatch.setattr(side_by_side.subprocess, "run", lambda *a, **k: Done)


def test_options_of_the_real_cli(cli):
    options = side_by_side.pairrm_options(cli)
    assert {"f32", "f16", "bf16"} <= set(options["dtype"])
    assert options["precision"] is None or "f32" in options["precision"]


def test_precision_values_are_read_from_the_help(monkeypatch):
    fake_help(monkeypatch, HELP_WITH_PRECISION)
    options = side_by_side.pairrm_options("pairrm")
    assert options == {"precision": ["f32", "bf16", "int8"], "dtype": ["f32", "f16", "bf16"]}


def test_tiers_without_a_precision_flag():
    options = {"precision": None, "dtype": ["f32", "f16", "bf16"]}
    assert side_by_side.tiers(Args(), options) == [("f32", [])]
    assert side_by_side.tiers(Args("f32,f16=--dtype f16"), options) == [("f32", []), ("f16", ["--dtype", "f16"])]
    assert side_by_side.tiers(Args("f32", "f16"), options) == [("f32", ["--dtype", "f16"])]
    with pytest.raises(SystemExit, match="needs its flags"):
        side_by_side.tiers(Args("bf16"), options)
    with pytest.raises(SystemExit, match="--dtype offers"):
        side_by_side.tiers(Args("f32", "int4"), options)


def test_tiers_with_a_precision_flag():
    options = {"precision": ["f32", "bf16", "int8"], "dtype": ["f32", "f16"]}
    assert side_by_side.tiers(Args(), options) == [
        ("f32", ["--precision", "f32"]), ("bf16", ["--precision", "bf16"]), ("int8", ["--precision", "int8"])]
    with pytest.raises(SystemExit, match="offers f32, bf16, int8"):
        side_by_side.tiers(Args("int4"), options)


def test_agreement_against_the_reference():
    reference = {"uniform": [1.0, -2.0], "mixed": [0.5]}
    a = side_by_side.agreement({"uniform": [1.1, -1.0], "mixed": [-0.5]}, reference)
    assert a["pairs"] == 3
    assert a["max_abs_error"] == pytest.approx(1.0)
    assert a["median_abs_error"] == pytest.approx(1.0)
    assert a["max_rel_error"] == pytest.approx(1.0)
    assert a["same_sign"] == pytest.approx(2 / 3)
    assert a["reference_median_abs_logit"] == pytest.approx(1.0)
    assert side_by_side.agreement({"rank4": [1.0]}, reference) is None


def test_every_table_names_its_cpu():
    for args in ([], ["--readme"]):
        out = subprocess.run([sys.executable, str(BENCH / "summarize.py"), *args], check=True,
                             capture_output=True, text=True).stdout
        lines = out.splitlines()
        tables = [i for i, line in enumerate(lines) if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))]
        assert tables, out
        for start in tables:
            end = start
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            after = "\n".join(lines[end:end + 3])
            assert "CPU" in after, f"the table at line {start} names no CPU:\n{out}"


def test_interleaved_alternates_the_sides_and_reports_each_round(monkeypatch, tmp_path, capsys):
    import interleaved

    calls = []
    speeds = {"pairrm": iter([0.50, 0.40, 0.60]), "peer": iter([0.40, 0.50, 0.50])}

    def side(name):
        def run(*_args):
            calls.append(name)
            return next(speeds[name])

        return run

    monkeypatch.setattr(interleaved, "pairrm_run", side("pairrm"))
    monkeypatch.setattr(interleaved, "peer_run", side("peer"))
    monkeypatch.setattr(interleaved.subprocess, "run", lambda *a, **k: None)  # the workload file
    monkeypatch.setattr(interleaved.machine, "cpu_info", lambda: {"summary": "Test CPU (AVX2)"})
    monkeypatch.setattr(interleaved.machine, "load", lambda: [0.0, 0.0, 0.0])
    out = tmp_path / "report.json"
    argv = ["interleaved.py", "--model", str(tmp_path), "--rounds", "3", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    interleaved.main()
    assert calls == ["pairrm", "peer", "peer", "pairrm", "pairrm", "peer"]
    report = __import__("json").loads(out.read_text())
    assert [round(r["ratio"], 3) for r in report["rounds"]] == [1.25, 0.8, 1.2]
    assert round(report["ratio_median"], 3) == 1.2
    assert (round(report["ratio_min"], 3), round(report["ratio_max"], 3)) == (0.8, 1.25)
    assert report["machine"]["cpu"]["summary"] == "Test CPU (AVX2)"
    assert "Test CPU (AVX2)" in capsys.readouterr().err
