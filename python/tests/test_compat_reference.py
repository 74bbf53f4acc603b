"""The compatibility llm_blender against the original llm_blender 0.0.2 (torch), call for call:
LLM-Blender's README and model card blocks, every compare mode, rank_with_ref's modes, per-call
token limits, ignored keyword arguments, unknown pairrm_cmp_type, a full RankerConfig.

Optional: set PAIRRM_REFERENCE_PYTHON to a Python that has llm-blender 0.0.2, torch and transformers
(e.g. the reference venv of tools/make_fixtures.py); it runs reference_scenarios.py there and the same
scenarios here. Numbers agree within the project's tolerance, except the one deliberate difference:
the "[B,A]" mode's logit has the opposite sign here (> 0 always means A is better)."""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

import pairrm
import reference_scenarios
from conftest import close

REFERENCE = os.environ.get("PAIRRM_REFERENCE_PYTHON")


def same(got: Any, want: Any, sign: float, where: str) -> None:
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (where, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            same(g, w, sign, f"{where}[{i}]")
    elif isinstance(want, float):
        assert close(got, sign * want), (where, got, want)
    else:
        assert got == want, (where, got, want)


@pytest.mark.skipif(not REFERENCE, reason="set PAIRRM_REFERENCE_PYTHON to a Python with llm-blender 0.0.2 to compare with it")
def test_same_results_as_the_original_llm_blender(tmp_path: Path, monkeypatch: Any) -> None:
    llm_blender = pytest.importorskip("llm_blender", reason="the compatibility distribution is not installed")
    if not issubclass(llm_blender.Blender, pairrm.Blender):
        pytest.skip("llm_blender is the original package here")
    out = tmp_path / "reference.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_HUB_CACHE", "HF_HOME")}
    subprocess.run([str(REFERENCE), str(Path(reference_scenarios.__file__)), str(out)], check=True, env=env, timeout=600)
    want = json.loads(out.read_text())
    cache = reference_scenarios.build_cache(tmp_path / "ours")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the surprising calls warn here (tested in test_upstream_calls.py)
        got = reference_scenarios.scenarios(str(cache))
    assert sorted(got) == sorted(want)
    for key in want:
        same(got[key], want[key], -1.0 if key.endswith(" [B,A]") else 1.0, key)
