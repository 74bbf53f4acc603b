"""Progress bars for long calls: tqdm when it is installed, else a plain bar on a terminal."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

__all__ = ["ProgressBar", "make_bar"]


class ProgressBar:
    """A bar that the engine drives by calling ``bar(done, total)``; ``close()`` removes it.

    Backed by ``tqdm.auto.tqdm`` when tqdm is importable (so notebooks get a widget), else by a
    one-line text bar on stderr, drawn only when stderr is a terminal. The bar appears on the
    first call (``bar(0, total)`` when the work starts), unless there is no work at all.
    """

    def __init__(self, desc: str, unit: str = "pass") -> None:
        self.desc = desc
        self.unit = unit
        self._units = unit + ("es" if unit.endswith("s") else "s")
        self._tqdm: Any = None
        self._text_drawn = 0.0
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self._tqdm_cls = None
        else:
            self._tqdm_cls = tqdm

    def __call__(self, done: int, total: int) -> None:
        if total == 0 and self._tqdm is None and not self._text_drawn:
            return  # nothing to do (e.g. single candidates): no bar
        if self._tqdm_cls is not None:
            if self._tqdm is None:
                self._tqdm = self._tqdm_cls(total=total, desc=self.desc, unit=self.unit, dynamic_ncols=True)
            if (self._tqdm.n, self._tqdm.total) != (done, total):
                self._tqdm.total = total
                self._tqdm.update(done - self._tqdm.n)
            return
        if not sys.stderr.isatty():
            return
        now = time.monotonic()
        if done < total and now - self._text_drawn < 0.2:
            return
        self._text_drawn = now
        width = 30
        filled = width * done // total if total else width
        sys.stderr.write(f"\r{self.desc}: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {self._units}")
        sys.stderr.flush()

    def close(self) -> None:
        """Finishes the bar (a no-op if it was never drawn)."""
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif self._text_drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._text_drawn = 0.0


def make_bar(desc: str, enabled: bool, unit: str = "pass") -> Optional[ProgressBar]:
    """A :class:`ProgressBar` titled ``desc``, or ``None`` when progress is disabled."""
    return ProgressBar(desc, unit) if enabled else None
