"""Argument checks with clear messages: ``TypeError`` for a wrong type, ``ValueError`` for a wrong
value. Any iterable works where a list is expected (tuples, numpy arrays, pandas Series), and
numpy string scalars count as ``str``."""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple

__all__ = ["strings", "optional_strings", "string_lists", "conversations", "same_length", "common_count", "positive_int", "non_negative_int"]


def _items(value: Any, name: str, what: str) -> List[Any]:
    if isinstance(value, (str, bytes)) or isinstance(value, Mapping):
        raise TypeError(f"{name} must be a list of {what}, not {type(value).__name__}")
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be a list of {what}, not {type(value).__name__}") from None


def strings(value: Any, name: str) -> List[str]:
    """``value`` as a list of ``str``."""
    items = _items(value, name, "str")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name}[{i}] must be a str, not {type(item).__name__}")
    return [str(item) for item in items]


def optional_strings(value: Any, name: str) -> Optional[List[str]]:
    """``None``, or ``value`` as a list of ``str``."""
    return None if value is None else strings(value, name)


def string_lists(value: Any, name: str) -> List[List[str]]:
    """``value`` as a list of lists of ``str``."""
    return [strings(row, f"{name}[{i}]") for i, row in enumerate(_items(value, name, "lists of str"))]


def conversations(value: Any, name: str) -> List[List[Tuple[str, str]]]:
    """``value`` (a list of conversations, each a list of ``{"role", "content"}`` dicts) as
    ``(role, content)`` turns."""
    result = []
    for i, conversation in enumerate(_items(value, name, "conversations")):
        turns = []
        for j, turn in enumerate(_items(conversation, f"{name}[{i}]", "turns")):
            where = f"{name}[{i}][{j}]"
            if not isinstance(turn, Mapping):
                raise TypeError(f"{where} must be a dict with 'role' and 'content', not {type(turn).__name__}")
            for key in ("role", "content"):
                if key not in turn:
                    raise ValueError(f"{where} has no {key!r} key")
                if not isinstance(turn[key], str):
                    raise TypeError(f"{where}[{key!r}] must be a str, not {type(turn[key]).__name__}")
            turns.append((str(turn["role"]), str(turn["content"])))
        result.append(turns)
    return result


def same_length(first: Tuple[str, Sequence[Any]], *others: Tuple[str, Optional[Sequence[Any]]]) -> None:
    """Raises ``ValueError`` unless every given column (``None`` skipped) has the length of the
    first."""
    name, column = first
    for other, values in others:
        if values is not None and len(values) != len(column):
            raise ValueError(f"{other} has {len(values)} items but {name} has {len(column)}; they must match")


def common_count(candidates: Sequence[Sequence[str]], name: str = "candidates") -> int:
    """The number of candidates per input, which must be the same for all and at least 1 (the
    result is a 2-D array); 0 when there are no inputs."""
    if not candidates:
        return 0
    n = len(candidates[0])
    for i, row in enumerate(candidates):
        if not row:
            raise ValueError(f"{name}[{i}] is empty: each input needs at least one candidate")
        if len(row) != n:
            raise ValueError(
                f"{name}[{i}] has {len(row)} candidates but {name}[0] has {n}: "
                "every input must have the same number of candidates"
            )
    return n


def _int_at_least(value: Any, name: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value}")
    return value


def positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` of at least 1."""
    return _int_at_least(value, name, 1)


def non_negative_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` of at least 0."""
    return _int_at_least(value, name, 0)
