"""``llm_blender.blender.blender_utils``: the candidate selection helper LLM-Blender's README
imports. Its torch helpers (model loaders and datasets) are not provided."""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["get_topk_candidates_from_ranks"]

#: llm_blender's torch helpers in this module: importing one says what to use instead.
_TORCH_HELPERS = ("load_ranker", "load_other_ranker", "load_fuser", "RankerDataset", "GenFuserDataset", "get_torch_dtype")


def get_topk_candidates_from_ranks(ranks: Any, candidates: Sequence[Sequence[str]], top_k: Optional[int]) -> np.ndarray:
    """Each input's ``top_k`` candidates, best (lowest rank) first, as llm_blender returns them:
    a numpy array of str of shape ``[len(candidates), top_k]`` (``top_k=None``: all). Every input
    needs the same number of candidates."""
    order = np.argsort(np.asarray(ranks), axis=1)[:, :top_k]
    table = np.asarray(candidates)
    return table[np.arange(table.shape[0])[:, None], order]


def __getattr__(name: str) -> Any:
    if name in _TORCH_HELPERS:
        raise ImportError(
            f"llm_blender.blender.blender_utils.{name} is one of llm_blender's torch helpers, which pairrm's "
            "llm_blender compatibility package does not provide: load models with llm_blender.Blender().loadranker(...)"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
