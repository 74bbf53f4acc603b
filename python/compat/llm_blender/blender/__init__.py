"""llm_blender.blender: ``Blender``, its config and utilities (on pairrm)."""
