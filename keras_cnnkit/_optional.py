"""Lazy import of optional dependencies with an actionable error."""

from __future__ import annotations

import importlib
from types import ModuleType

from keras_cnnkit.errors import MissingDependencyError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise a :class:`MissingDependencyError` naming the extra.

    Args:
        module: Dotted module name, e.g. ``"matplotlib.pyplot"``.
        extra: The keras-cnnkit extra that installs it, e.g. ``"plot"``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: If the module cannot be imported.

    Example:
        >>> require("json", extra="core").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module!r} is required for this feature but is not installed: "
            f"pip install 'keras-cnnkit[{extra}]'"
        ) from exc
