"""llm_blender.pair_ranker: the ranker's config (the torch model classes are not provided)."""
