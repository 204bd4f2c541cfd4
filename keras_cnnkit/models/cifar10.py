"""Ready CIFAR-10 networks: the classic Keras CNN and a fast ResNet-9-style one."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_cnnkit.models.conv_stack import conv_stack
from keras_cnnkit.models.spec import ConvStackSpec, HeadSpec, StageSpec

#: The classic Keras CIFAR-10 example network: Conv32x2-Pool-Dropout-Conv64x2-Pool-
#: Dropout-Dense512-Dropout-Dense10 (1,250,858 parameters at 32x32x3), no normalization.
CLASSIC_SPEC = ConvStackSpec(
    stages=(
        StageSpec(32, convs=2, padding=("same", "valid"), pool="max", dropout=0.25),
        StageSpec(64, convs=2, padding=("same", "valid"), pool="max", dropout=0.25),
    ),
    head=HeadSpec(pooling="flatten", hidden_units=(512,), dropout=0.5),
    normalization="none",
    preprocessing="unit",
)

#: A ResNet-9-style network after the fast CIFAR-10 training literature: a 64-filter
#: stem; 128 filters + max-pool + a residual block; 256 + max-pool; 256 + max-pool +
#: a residual block; global max pooling and a scaled linear classifier. Every conv
#: is conv → fused BatchNorm → ReLU. About 2.44 M parameters and 0.57 GFLOP per
#: 32x32 image forward.
FAST_SPEC = ConvStackSpec(
    stem_filters=64,
    stages=(
        StageSpec(128, convs=1, pool="max", residual=1),
        StageSpec(256, convs=1, pool="max"),
        StageSpec(256, convs=1, pool="max", residual=1),
    ),
    head=HeadSpec(pooling="max", logit_scale=0.125),
    normalization="batch",
    # Short schedules move the weights fast: the statistics must follow (PyTorch's 0.1).
    norm_momentum=0.9,
    preprocessing="unit",
    kernel_initializer="he_normal",
)


def cifar10_classic(
    *,
    num_classes: int = 10,
    input_shape: Sequence[int] = (32, 32, 3),
    dtype: str | None = None,
) -> keras.Model:
    """The classic Keras CIFAR-10 CNN (about 1.25 M parameters).

    Args:
        num_classes: Number of classes.
        input_shape: ``(height, width, channels)`` of the raw uint8 images.
        dtype: Keras dtype policy name, or ``None`` for the global policy.

    Returns:
        The uncompiled model. Its recipe is
        :func:`keras_cnnkit.training.cifar10_classic_recipe`.

    Example:
        >>> cifar10_classic().count_params()
        1250858
    """
    return conv_stack(
        CLASSIC_SPEC,
        input_shape=input_shape,
        num_classes=num_classes,
        dtype=dtype,
        name="cifar10_classic",
    )


def cifar10_fast(
    *,
    num_classes: int = 10,
    input_shape: Sequence[int | None] = (32, 32, 3),
    normalization: str = "batch",
    width: float = 1.0,
    dtype: str | None = None,
) -> keras.Model:
    """A fast ResNet-9-style CIFAR-10 network (about 2.44 M parameters).

    Args:
        num_classes: Number of classes.
        input_shape: ``(height, width, channels)`` of the raw uint8 images; the
            global-pooling head accepts any size of at least 8x8.
        normalization: Normalization of every conv (default the fused ``"batch"``).
        width: Multiplier of every layer's filters (``0.5`` is about 4x cheaper).
        dtype: Keras dtype policy name, or ``None`` for the global policy.

    Returns:
        The uncompiled model. Its recipe is
        :func:`keras_cnnkit.training.cifar10_fast_recipe`.

    Example:
        >>> cifar10_fast().count_params() > 2_000_000
        True
    """
    import dataclasses

    spec = dataclasses.replace(FAST_SPEC, normalization=normalization)
    if width != 1.0:
        spec = spec.scaled(width)
    return conv_stack(
        spec,
        input_shape=input_shape,
        num_classes=num_classes,
        dtype=dtype,
        name="cifar10_fast",
    )
