"""``llm_blender.Blender``: :class:`pairrm.Blender` with llm_blender's constructor (the three
config objects) and its ``ranker_config`` / ``blender_config`` / ``fuser_config`` attributes."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict, Optional

import pairrm

from ..gen_fuser.config import GenFuserConfig
from ..pair_ranker.config import RankerConfig
from .config import BlenderConfig

__all__ = ["Blender"]

logger = logging.getLogger("pairrm")


def _fields(config: Any) -> Dict[str, Any]:
    """A config's fields: a dataclass (ours, or any with the same field names), or an object
    with ``to_dict()``."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    raise TypeError(f"expected a config dataclass such as llm_blender.RankerConfig, not {type(config).__name__}")


class Blender(pairrm.Blender):
    """LLM-Blender's ``Blender`` backed by pairrm: same constructor, methods, arguments and numbers.

    Args:
        blender_config: a :class:`~llm_blender.BlenderConfig`; ``use_tqdm`` is honoured,
            ``device`` ignored (pairrm runs on the CPU).
        ranker_config: a :class:`~llm_blender.RankerConfig`: when given, its ``load_checkpoint``
            is loaded with its fields as :meth:`loadranker`'s keyword arguments, as llm_blender
            does.
        fuser_config: a :class:`~llm_blender.GenFuserConfig`: the GenFuser is not provided, so
            passing one raises ``NotImplementedError``.

    Without a ``ranker_config``, call ``loadranker("llm-blender/PairRM")`` before ranking; a
    ranking method called before raises :class:`pairrm.RankerNotLoadedError`, an
    ``AttributeError`` as in llm_blender. The bubble order of ``get_best_of_n`` is seeded by
    ``blender.seed`` (0; llm_blender's is unseeded).
    """

    def __init__(
        self,
        blender_config: Optional[BlenderConfig] = None,
        ranker_config: Optional[RankerConfig] = None,
        fuser_config: Optional[GenFuserConfig] = None,
    ) -> None:
        self.blender_config = blender_config or BlenderConfig()
        super().__init__(use_tqdm=bool(getattr(self.blender_config, "use_tqdm", True)))
        self.ranker_config = ranker_config
        self.fuser_config = fuser_config
        if ranker_config is None:
            logger.debug("pairrm: no ranker config given; load one with loadranker()")
        else:
            options = _fields(ranker_config)
            if options.get("load_checkpoint") is None:
                raise ValueError(
                    "ranker_config.load_checkpoint is None: set it to 'llm-blender/PairRM' or a checkpoint directory"
                )
            self.loadranker(options["load_checkpoint"], **options)
        if fuser_config is not None:
            options = _fields(fuser_config)
            self.loadfuser(options.get("model_name"), **options)

    def loadranker(self, ranker_path: Any, device: Any = None, **kwargs: Any) -> None:
        """As :meth:`pairrm.Blender.loadranker`; also sets ``ranker_config`` to what was loaded
        (a :class:`~llm_blender.RankerConfig`, as llm_blender does)."""
        super().loadranker(ranker_path, device, **kwargs)
        engine = self.engine
        config = RankerConfig.from_dict(kwargs)
        config.ranker_type, config.model_type = "pairranker", "deberta"
        config.load_checkpoint = os.fspath(ranker_path)
        config.source_maxlength = engine.source_max_length
        config.candidate_maxlength = engine.candidate_max_length
        config.device = "cpu"
        self.ranker_config = config
