"""Shared fixtures of the pairrm Python tests: the committed tiny checkpoints and their goldens
(recorded from llm-blender 0.0.2 by tools/make_fixtures.py), the CLI, the shared data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict

import pytest

import pairrm

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "fixtures" / "models"
#: The self-contained tiny checkpoints (no shared data needed), in all layouts and weight formats.
TINY = ["tiny-original", "tiny-original-bin", "tiny-hf"]


def model_dir(name: str) -> str:
    return str(MODELS / name)


def goldens(name: str) -> Dict[str, Any]:
    with open(MODELS / name / "goldens.json") as f:
        return json.load(f)


def close(got: float, want: float) -> bool:
    """The project's tolerance: ``|got - want| <= 1e-5 * max(1, |want|)``."""
    return abs(got - want) <= 1e-5 * max(1.0, abs(want))


def load(name: str = "tiny-original", **kwargs: Any) -> pairrm.Blender:
    blender = pairrm.Blender(use_tqdm=False)
    blender.loadranker(model_dir(name), **kwargs)
    return blender


@pytest.fixture(scope="session")
def blender() -> pairrm.Blender:
    """The tiny original-layout checkpoint, loaded once."""
    return load()


@pytest.fixture(scope="session")
def cli() -> str:
    """The `pairrm` CLI binary (PAIRRM_CLI, else target/debug/pairrm, else on PATH)."""
    for candidate in (os.environ.get("PAIRRM_CLI"), str(REPO / "target" / "debug" / "pairrm"), shutil.which("pairrm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("the pairrm CLI is not built: run `cargo build -p pairrm-cli` (scripts/test.sh does) or set PAIRRM_CLI")


#: The real deberta-v3 ``spm.model``, committed as a test fixture (MIT, see its SOURCE.md).
SPM_MODEL = REPO / "tests" / "fixtures" / "tokenizer" / "deberta-v3" / "spm.model"


def make_hub_cache(root: Path, repos: Dict[str, Dict[str, Path]], commit: str = "0123456789abcdef0123456789abcdef01234567") -> Path:
    """A Hugging Face cache under ``root`` holding ``repos`` (repo id -> {file name: source}) at
    ``commit``, with ``refs/main`` pointing to it, as huggingface_hub lays it out."""
    cache = root / "hub"
    for repo, files in repos.items():
        base = cache / ("models--" + repo.replace("/", "--"))
        snapshot = base / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        (base / "refs").mkdir(parents=True, exist_ok=True)
        (base / "refs" / "main").write_text(commit)
        for name, source in files.items():
            shutil.copy(source, snapshot / name)
    return cache


def pairrm_hub_cache(root: Path) -> Path:
    """An HF cache under ``root`` in which ``llm-blender/PairRM`` is the realtok fixture (the real
    deberta-v3 tokenizer, tiny random weights) and its config.json names
    ``microsoft/deberta-v3-large`` as the real PairRM's does: code that loads the hub id, like the
    LLM-Blender README, runs on the fixture."""
    backbone, checkpoint = MODELS / "realtok-backbone", MODELS / "realtok-original"
    return make_hub_cache(
        root,
        {
            "microsoft/deberta-v3-large": {
                "config.json": backbone / "config.json",
                "tokenizer_config.json": backbone / "tokenizer_config.json",
                "spm.model": SPM_MODEL,
            },
            "llm-blender/PairRM": {
                "config.json": checkpoint / "config.json",
                "model.safetensors": checkpoint / "model.safetensors",
            },
        },
    )


@pytest.fixture
def pairrm_hub(tmp_path: Path, monkeypatch: Any) -> Path:
    """``llm-blender/PairRM`` resolves to the realtok fixture (offline) for the test's duration."""
    cache = pairrm_hub_cache(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache
