"""The normalization choices the builders accept, by name."""

from __future__ import annotations

import math

import keras

from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers.batch_norm import BatchNorm

#: Names accepted by every ``normalization=`` argument of the builders.
NORMALIZATIONS = ("batch", "keras_batch", "sync_batch", "group", "layer", "none")


def make_normalization(
    kind: str | None,
    *,
    name: str,
    channels: int | None = None,
    momentum: float = 0.99,
    dtype=None,
) -> keras.layers.Layer | None:
    """Create the normalization layer named by ``kind``.

    Args:
        kind: ``"batch"`` (:class:`~keras_cnnkit.layers.BatchNorm`, fused; the
            default everywhere), ``"keras_batch"`` (``keras.layers.BatchNormalization``),
            ``"sync_batch"`` (Keras' batch norm with ``synchronized=True``; on the JAX
            backend, where one SPMD program already computes batch statistics over
            every device, Keras' plain batch norm),
            ``"group"`` (``GroupNormalization`` with up to 32 groups), ``"layer"``
            (``LayerNormalization``) or ``"none"``/``None``.
        name: Name of the layer.
        channels: Number of channels it normalizes (sets the group count of
            ``"group"``).
        momentum: Momentum of the moving statistics of the batch normalizations
            (Keras convention: ``0.99`` keeps 99 % of the old value each step).
        dtype: Dtype policy of the layer, or ``None`` for the global policy.

    Returns:
        A layer, or ``None`` for ``"none"``.

    Raises:
        SpecError: If ``kind`` is not one of :data:`NORMALIZATIONS`.

    Example:
        >>> type(make_normalization("batch", name="bn")).__name__
        'BatchNorm'
    """
    if kind is None or kind == "none":
        return None
    if kind == "batch":
        return BatchNorm(momentum=momentum, name=name, dtype=dtype)
    if kind == "keras_batch":
        return keras.layers.BatchNormalization(momentum=momentum, name=name, dtype=dtype)
    if kind == "sync_batch":
        return keras.layers.BatchNormalization(
            momentum=momentum,
            synchronized=keras.backend.backend() == "tensorflow",
            name=name,
            dtype=dtype,
        )
    if kind == "group":
        groups = math.gcd(int(channels or 32), 32)
        return keras.layers.GroupNormalization(groups=groups, name=name, dtype=dtype)
    if kind == "layer":
        return keras.layers.LayerNormalization(name=name, dtype=dtype)
    raise SpecError(f"unknown normalization {kind!r}; expected one of {NORMALIZATIONS}")
