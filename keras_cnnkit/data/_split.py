"""The one validation split: seeded, stable, for folders, file lists, arrays and ``.npz``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from keras_cnnkit.errors import DataError, SpecError


def split_score(key: str, seed: int) -> float:
    """A seeded, stable score in [0, 1) for ``key`` (a file's relative path, or ``"x[i]"``)."""
    text = f"{int(seed)}\0{key}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big") / 2.0**64


def in_validation(key: str, fraction: float, seed: int) -> bool:
    """Whether ``key`` falls in the validation part of a seeded, stable partition.

    The decision depends only on ``key`` (e.g. a file's path relative to the root, or
    ``"x[12]"`` for the 13th array item), ``seed`` and ``fraction``: the same item lands
    on the same side on every run, on every machine, whatever other items are added or
    removed.

    Args:
        key: The item's stable identifier.
        fraction: Share of items in validation, in (0, 1).
        seed: Partition seed.

    Returns:
        ``True`` if the item is in the validation part.

    Example:
        >>> in_validation("cat/001.jpg", 0.2, seed=0) == in_validation("cat/001.jpg", 0.2, seed=0)
        True
    """
    return split_score(key, seed) < float(fraction)


def array_keys(n: int) -> list[str]:
    """The split keys of ``n`` array items: ``"x[0]"``, ``"x[1]"``..."""
    return [f"x[{i}]" for i in range(n)]


def split_indices(
    keys: Sequence[str], validation: float | int, seed: int = 0, *, where: str = "split"
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation items of a seeded, stable split.

    A fraction holds out every item whose :func:`split_score` is below it (about that
    share of the items; adding or removing items never moves the others); a count holds
    out that many items, those with the lowest scores.

    Args:
        keys: One stable key per item (relative paths, or :func:`array_keys`).
        validation: A fraction in (0, 1) or a number of items.
        seed: Partition seed.
        where: The caller's name, for messages.

    Returns:
        ``(train_indices, validation_indices)``, each in the items' order.

    Raises:
        SpecError: If ``validation`` is not a fraction in (0, 1) or a positive count.
        DataError: If either part is empty.

    Example:
        >>> train, val = split_indices([f"x[{i}]" for i in range(10)], 3, seed=0)
        >>> len(train), len(val)
        (7, 3)
    """
    n = len(keys)
    scores = np.array([split_score(k, seed) for k in keys], dtype=np.float64)
    if isinstance(validation, (bool, np.bool_)):
        raise SpecError(f"{where}: validation must be a fraction or a count, got {validation!r}")
    if isinstance(validation, (int, np.integer)):
        k = int(validation)
        if k <= 0:
            raise SpecError(f"{where}: a validation count must be positive, got {k}")
        val = np.zeros(n, bool)
        val[np.argsort(scores, kind="stable")[:k]] = True
    else:
        fraction = float(validation)
        if not 0.0 < fraction < 1.0:
            raise SpecError(f"{where}: validation_split must be in (0, 1), got {validation!r}")
        val = scores < fraction
    train_idx, val_idx = np.flatnonzero(~val), np.flatnonzero(val)
    for name, idx in (("training", train_idx), ("validation", val_idx)):
        if not len(idx):
            raise DataError(
                f"{where}: validation={validation!r} leaves the {name} part empty ({n} items)"
            )
    return train_idx, val_idx
