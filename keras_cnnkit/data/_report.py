"""The record of files (or array items) that a pipeline skipped, and why."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator


@dataclasses.dataclass(frozen=True)
class SkippedItem:
    """One input left out of a pipeline.

    Attributes:
        path: The file (or ``"x[12]"`` for an array item, or a class folder).
        reason: What is wrong with it, in words.
    """

    path: str
    reason: str


class SkipReport:
    """The files a pipeline built with ``on_error="skip"`` left out, with the reason for each.

    The report is filled while the inputs are checked and may grow during iteration,
    so it can be read at any time. It is safe to read from another thread.

    Example:
        >>> report = SkipReport()
        >>> report.add("data/cat/broken.jpg", "file is truncated")
        >>> len(report), report.paths
        (1, ['data/cat/broken.jpg'])
    """

    def __init__(self) -> None:
        self._items: list[SkippedItem] = []
        self._lock = threading.Lock()

    def add(self, path: str, reason: str) -> None:
        """Record a skipped input.

        Args:
            path: The file or item that was left out.
            reason: Why it was left out.
        """
        with self._lock:
            self._items.append(SkippedItem(str(path), str(reason)))

    @property
    def items(self) -> list[SkippedItem]:
        """A copy of the skipped items, in the order they were found."""
        with self._lock:
            return list(self._items)

    @property
    def paths(self) -> list[str]:
        """The skipped paths, in the order they were found."""
        return [item.path for item in self.items]

    def reason(self, path: str) -> str | None:
        """The reason ``path`` was skipped, or ``None`` if it was not."""
        for item in self.items:
            if item.path == str(path):
                return item.reason
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __iter__(self) -> Iterator[SkippedItem]:
        return iter(self.items)

    def __bool__(self) -> bool:
        return len(self) > 0

    def summary(self) -> str:
        """A human-readable multi-line summary (one line per skipped item)."""
        items = self.items
        if not items:
            return "no inputs skipped"
        lines = [f"{len(items)} input(s) skipped:"]
        lines += [f"  {item.path}: {item.reason}" for item in items]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"SkipReport({len(self)} skipped)"
