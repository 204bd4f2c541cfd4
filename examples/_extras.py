"""Check, before any work, that the optional packages an example needs are installed."""

from __future__ import annotations

import importlib.util
import sys


def require(module: str, extra: str, why: str) -> None:
    """Exit at once, naming the pip extra, when ``module`` cannot be imported.

    Examples call this right after parsing their arguments, so a missing package
    stops them before training, not after.
    """
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package (``google`` of ``google.cloud``)
        found = False
    if not found:
        script = sys.argv[0].rsplit("/", 1)[-1]
        sys.exit(
            f"{script}: {why} needs {module}, which is not installed: "
            f"pip install 'keras-cnnkit[{extra}]'"
        )
