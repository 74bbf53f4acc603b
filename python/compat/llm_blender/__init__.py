"""``llm_blender`` on pairrm: LLM-Blender's PairRM API with no torch.

This is the compatibility distribution of pairrm (``pip install ./python/compat`` after
``pip install .``): code that says ``import llm_blender`` runs unchanged, with the numbers of
llm-blender 0.0.2, on pairrm's exact Rust engine::

    import llm_blender
    blender = llm_blender.Blender()
    blender.loadranker("llm-blender/PairRM")
    ranks = blender.rank(inputs, candidates_texts, return_scores=False, batch_size=1)

The GenFuser (``loadfuser``, ``fuse``, ``rank_and_fuse``) is not provided: those raise
``NotImplementedError`` naming the alternative. See docs/python.md for what else differs.
"""

from .blender.blender import Blender
from .blender.config import BlenderConfig
from .gen_fuser.config import GenFuserConfig
from .pair_ranker.config import RankerConfig

__all__ = ["Blender", "BlenderConfig", "RankerConfig", "GenFuserConfig"]
