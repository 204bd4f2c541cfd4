"""A dependency-free progress bar for transfers, written to stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

#: ``callback(done_bytes, total_bytes)``: how transfer functions report progress.
ProgressCallback = Callable[[int, int], None]


class ProgressBar:
    """Print ``label [#####.....]  42%  12.0/28.0 MB  65.3 MB/s`` as a transfer advances.

    On a terminal the line is redrawn in place at most ten times a second; elsewhere
    (a log file, CI) one line is printed per 10% so logs stay short.

    Args:
        label: Shown before the bar (e.g. the destination URI).
        stream: Where to write; ``sys.stderr`` by default.
        width: Number of bar characters.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> bar = ProgressBar("demo", stream=out)
        >>> bar(5, 10); bar(10, 10)
        >>> "100%" in out.getvalue()
        True
    """

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._finished = False
        isatty = getattr(self.stream, "isatty", None)
        self._tty = bool(isatty and isatty())

    def __call__(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` bytes."""
        if self._finished:
            return
        now = time.monotonic()
        final = done >= total
        fraction = 1.0 if total <= 0 else min(done / total, 1.0)
        if self._tty:
            if not final and now - self._last_draw < 0.1:
                return
            self.stream.write("\r" + self._line(done, total, fraction, now))
        else:
            decile = int(fraction * 10)
            if decile == self._last_decile and not final:
                return
            self._last_decile = decile
            self.stream.write(self._line(done, total, fraction, now) + "\n")
        if final:
            if self._tty:
                self.stream.write("\n")
            self._finished = True
        self._last_draw = now
        self.stream.flush()

    def _line(self, done: int, total: int, fraction: float, now: float) -> str:
        # Rounded down: 100 % and a full bar only when the transfer is done.
        final = done >= total
        filled = self.width if final else min(self.width - 1, int(fraction * self.width))
        percent = 100 if final else min(99, int(fraction * 100))
        bar = "#" * filled + "." * (self.width - filled)
        rate = done / max(now - self.start, 1e-9) / 1e6
        return (
            f"{self.label} [{bar}] {percent:3d}%  "
            f"{done / 1e6:.1f}/{total / 1e6:.1f} MB  {rate:.1f} MB/s"
        )


def make_callback(progress: bool | ProgressCallback | None, label: str) -> ProgressCallback | None:
    """Turn the ``progress`` argument of a transfer into a callback (or ``None``)."""
    if progress is True:
        return ProgressBar(label)
    if callable(progress):
        return progress
    return None
