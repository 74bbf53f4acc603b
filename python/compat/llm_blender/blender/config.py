"""``BlenderConfig``: llm_blender's blender configuration, with the same fields and defaults.

pairrm honours ``use_tqdm``; ``device`` is ignored (pairrm runs on the CPU).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._dataclass_json import DictConversions

__all__ = ["BlenderConfig"]


@dataclass
class BlenderConfig(DictConversions):
    """llm_blender's ``BlenderConfig``."""

    device: str = field(default="cuda", metadata={"help": "Ignored: pairrm runs on the CPU"})
    use_tqdm: bool = field(default=True, metadata={"help": "Show progress bars"})
