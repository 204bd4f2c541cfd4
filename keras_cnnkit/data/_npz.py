"""Reading a ``.npz`` of images and labels: the one reader for training, packing and evaluation."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from keras_cnnkit.errors import DataError


def read_npz(path: str | os.PathLike, where: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images ``x``, labels ``y`` and the class names (if stored) of a ``.npz`` file.

    The file holds ``x`` of shape ``(n, height, width)`` or ``(n, height, width, channels)``
    and ``y`` of shape ``(n,)`` (or ``(n, 1)``), and optionally ``class_names``. A
    grayscale ``x`` gains a channel axis. Pixel values and label range are left to the
    caller, which knows its classes and input scale.

    Args:
        path: The ``.npz`` file.
        where: What the user called it (a configuration key or a command-line argument),
            named by every error.

    Returns:
        ``(x, y, class_names)``; ``class_names`` is empty when the file stores none.

    Raises:
        DataError: The file is missing or unreadable, lacks ``x`` or ``y``, or their
            shapes do not match.

    Example:
        >>> import tempfile, numpy as np
        >>> from keras_cnnkit.data._npz import read_npz
        >>> f = tempfile.NamedTemporaryFile(suffix=".npz", delete=False).name
        >>> np.savez(f, x=np.zeros((2, 4, 4), "uint8"), y=np.array([0, 1]))
        >>> x, y, names = read_npz(f, "data.train")
        >>> x.shape, names
        ((2, 4, 4, 1), [])
    """
    p = pathlib.Path(path)
    if not p.is_file():
        raise DataError(f"{where}: data file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: cannot read {p}: {exc}") from None
    if "x" not in arrays or "y" not in arrays:
        raise DataError(f"{where}: {p} must hold arrays 'x' and 'y', found {sorted(arrays)}")
    x, y = arrays["x"], arrays["y"].reshape(-1)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or len(x) != len(y) or len(x) == 0:
        raise DataError(
            f"{where}: {p} must hold x (n, height, width, channels) and y (n,), got "
            f"{arrays['x'].shape} and {arrays['y'].shape}"
        )
    names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else []
    return x, y, names
