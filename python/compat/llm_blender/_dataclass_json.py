"""The dictionary and JSON conversions that llm_blender's config dataclasses get from
``dataclasses_json``, without that dependency."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, Mapping, Type, TypeVar

__all__ = ["DictConversions"]

C = TypeVar("C", bound="DictConversions")


class DictConversions:
    """``to_dict`` / ``from_dict`` / ``to_json`` / ``from_json`` for a dataclass."""

    def to_dict(self, encode_json: bool = False) -> Dict[str, Any]:
        """The fields as a dict (``encode_json``: values made JSON-safe, e.g. paths as str)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return json.loads(json.dumps(values, default=str)) if encode_json else values

    @classmethod
    def from_dict(cls: Type[C], kvs: Mapping[str, Any], *, infer_missing: bool = False) -> C:
        """A config from a dict; keys that are not fields are ignored, missing fields keep their
        defaults."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in kvs.items() if k in names})

    def to_json(self, **json_kwargs: Any) -> str:
        """The fields as a JSON object."""
        return json.dumps(self.to_dict(encode_json=True), **json_kwargs)

    @classmethod
    def from_json(cls: Type[C], s: str, *, infer_missing: bool = False) -> C:
        """A config from a JSON object (as :meth:`from_dict`)."""
        return cls.from_dict(json.loads(s), infer_missing=infer_missing)
