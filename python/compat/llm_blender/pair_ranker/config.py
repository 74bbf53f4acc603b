"""``RankerConfig``: llm_blender's ranker configuration, with the same fields and defaults.

pairrm reads the model from the checkpoint itself; of these fields it honours ``load_checkpoint``
(what ``Blender(ranker_config=...)`` loads), ``cache_dir``, ``source_maxlength`` and
``candidate_maxlength``. The model fields (``ranker_type``, ``model_type``, ``model_name``,
``n_tasks``) come from the checkpoint's config.json (another value is ignored with a warning);
``device`` is ignored (pairrm runs on the CPU); the training options and ``fp16`` change nothing
when ranking on the CPU, in llm_blender either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .._dataclass_json import DictConversions

__all__ = ["RankerConfig"]


@dataclass
class RankerConfig(DictConversions):
    """llm_blender's ``RankerConfig`` (see the module's notes for what pairrm uses)."""

    ranker_type: Optional[str] = field(default=None, metadata={"help": "Ranker type; PairRM checkpoints are 'pairranker'"})
    model_type: Optional[str] = field(default=None, metadata={"help": "Backbone type; PairRM's is 'deberta'"})
    model_name: Optional[str] = field(default=None, metadata={"help": "Backbone name (from the checkpoint's config.json)"})
    cache_dir: Optional[str] = field(default=None, metadata={"help": "Hugging Face cache directory"})
    load_checkpoint: Optional[str] = field(default=None, metadata={"help": "The checkpoint: a directory or a hub id"})
    source_maxlength: Optional[int] = field(default=None, metadata={"help": "Token limit of the source (instruction + input)"})
    candidate_maxlength: Optional[int] = field(default=None, metadata={"help": "Token limit of each candidate"})
    n_tasks: int = field(default=1, metadata={"help": "Number of tasks of the head (the checkpoint's)"})
    num_pos: int = field(default=1, metadata={"help": "Training only"})
    num_neg: int = field(default=1, metadata={"help": "Training only"})
    sub_sampling_mode: str = field(default="all_pair", metadata={"help": "Training only"})
    sub_sampling_ratio: float = field(default=0.5, metadata={"help": "Training only"})
    loss_type: str = field(default="instructgpt", metadata={"help": "Training only"})
    reduce_type: str = field(default="linear", metadata={"help": "Training only"})
    inference_mode: str = field(default="bubble", metadata={"help": "Not used by Blender's methods"})
    drop_out: float = field(default=0.05, metadata={"help": "Training only"})
    fp16: bool = field(default=True, metadata={"help": "Half precision on cuda/mps only; pairrm: loadranker(dtype=...)"})
    device: Optional[str] = field(default=None, metadata={"help": "Ignored: pairrm runs on the CPU"})
