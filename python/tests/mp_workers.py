"""Worker functions for test_multiprocessing (importable by spawned processes)."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

import pairrm

_blender: Optional[pairrm.Blender] = None


def init(model: str) -> None:
    """Pool initializer: one Blender per worker process, one engine thread each."""
    global _blender
    _blender = pairrm.Blender(use_tqdm=False)
    _blender.loadranker(model, threads=1)


def rank(chunk: Tuple[List[str], List[List[str]]]) -> np.ndarray:
    assert _blender is not None
    return _blender.rank(chunk[0], chunk[1], return_scores=True)


def use_inherited() -> str:
    """Calls the Blender that a forked child inherited from its parent (set by the parent)."""
    assert _blender is not None
    try:
        _blender.rank(["x"], [["a", "b"]])
    except RuntimeError as e:
        return str(e)
    return "ran"


class RayScorer:
    """A Ray Data ``map_batches`` callable class: the model loads once per actor."""

    def __init__(self, model: str) -> None:
        self.blender = pairrm.Blender(use_tqdm=False)
        self.blender.loadranker(model, threads=1)

    def __call__(self, batch: Any) -> Any:
        batch["scores"] = list(self.blender.rank(list(batch["prompt"]), [list(c) for c in batch["candidates"]], return_scores=True))
        return batch
