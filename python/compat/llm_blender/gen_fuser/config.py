"""``GenFuserConfig``: llm_blender's fuser configuration, with the same fields and defaults.

The GenFuser itself is not provided: ``Blender(fuser_config=...)``, ``loadfuser``, ``fuse`` and
``rank_and_fuse`` raise ``NotImplementedError`` naming the alternative. The class exists so that
code which builds the configs still imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .._dataclass_json import DictConversions

__all__ = ["GenFuserConfig"]


@dataclass
class GenFuserConfig(DictConversions):
    """llm_blender's ``GenFuserConfig`` (the fuser is not provided)."""

    model_name: str = field(default="llm-blender/gen_fuser_3b", metadata={"help": "Fuser model name"})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Cache directory"})
    max_length: int = field(default=1024, metadata={"help": "Token limit of source + top-k candidates"})
    candidate_maxlength: int = field(default=128, metadata={"help": "Token limit of each candidate"})
    torch_dtype: str = field(default="bfloat16", metadata={"help": "torch dtype"})
    load_in_4bit: bool = field(default=False, metadata={"help": "Load in 4 bits"})
    load_in_8bit: bool = field(default=False, metadata={"help": "Load in 8 bits"})
    device: Optional[str] = field(default=None, metadata={"help": "Device"})
