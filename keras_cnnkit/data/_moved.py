"""Old import paths of names that moved into :mod:`keras_cnnkit.data`: they warn, then resolve."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from keras_cnnkit._deprecation import warn_deprecated

#: The version that moved the names.
SINCE = "0.1.0"


def moved(old_module: str, names: Iterable[str], new_module: str = "keras_cnnkit.data") -> Callable:
    """A module ``__getattr__`` that serves ``names`` from ``new_module`` with a warning.

    Args:
        old_module: The module the names used to live in.
        names: The names that moved.
        new_module: Where they live now.

    Returns:
        The ``__getattr__`` function for ``old_module``.
    """
    wanted = frozenset(names)

    def __getattr__(name: str):
        if name not in wanted:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        warn_deprecated(
            f"{old_module}.{name}", since=SINCE, alternative=f"{new_module}.{name}", stacklevel=2
        )
        return getattr(importlib.import_module(new_module), name)

    return __getattr__
