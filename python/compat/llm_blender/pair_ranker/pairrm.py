"""``llm_blender.pair_ranker.pairrm`` holds ``DebertaV2PairRM``, PairRM as a torch / transformers
model class. pairrm runs PairRM without torch, so this module cannot provide it."""

raise ImportError(
    "llm_blender.pair_ranker.pairrm (DebertaV2PairRM, a torch model class) is not part of pairrm's "
    "llm_blender compatibility package. Compare with llm_blender.Blender().compare(...) or "
    "pairrm.Engine(...).compare(...) (the same logits, no torch), or install the original "
    "llm-blender for the torch class"
)
