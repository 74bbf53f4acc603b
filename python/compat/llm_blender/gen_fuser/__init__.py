"""llm_blender.gen_fuser: the fuser's config only (the GenFuser is not provided)."""
