"""pairrm: exact, fast PairRM (LLM-Blender's pairwise reward model) without torch.

A drop-in for ``llm_blender``'s PairRM ranker::

    import pairrm
    blender = pairrm.Blender()
    blender.loadranker("llm-blender/PairRM")
    ranks = blender.rank(inputs, candidates)

- :class:`Blender`: ``llm_blender.Blender``'s ranking methods (rank, compare,
  compare_conversations, rank_with_ref, get_best_of_n, get_worst_of_n, n_generate,
  best_of_n_generate), same arguments, return types and numbers; its GenFuser methods raise
  ``NotImplementedError``. ``pip install ./python/compat`` adds the ``llm_blender`` module itself.
- :class:`PairRMJudge`: TRL's pairwise judge API.
- :class:`Engine`: the low-level engine (columns in, lists out).

The work runs in Rust with the GIL released; Ctrl-C interrupts it. See docs/python.md.
"""

from ._pairrm import Engine, NotInCacheError, __version__, hub_cache_dir
from .blender import Blender, RankerNotLoadedError
from .judge import PairRMJudge

__all__ = ["Blender", "PairRMJudge", "Engine", "NotInCacheError", "RankerNotLoadedError", "hub_cache_dir", "__version__"]
