"""Ready CIFAR-10 networks: the classic Keras CNN, a fast ResNet-9-style one, airbench's."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_cnnkit.layers import BatchNorm, ClassifierHead, ConvBlock, Normalize
from keras_cnnkit.layers._initializers import PartialIdentity
from keras_cnnkit.layers._tta import TestTimeAugmentation
from keras_cnnkit.layers._whitening import PatchWhitening
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


#: Per-channel mean and standard deviation of the CIFAR-10 training images (0..1 range).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def cifar10_airbench(
    *,
    num_classes: int = 10,
    input_shape: Sequence[int] = (32, 32, 3),
    widths: Sequence[int] = (64, 256, 256),
    whitening: bool = True,
    tta_level: int = 2,
    norm_momentum: float = 0.4,
    logit_scale: float = 1.0 / 9.0,
    dtype: str | None = None,
) -> keras.Model:
    """The small network of airbench94 (Jordan, 2024): about 1.97 M parameters.

    Pixels normalized by the CIFAR-10 mean and std; a 2x2 patch-whitening
    convolution (:class:`~keras_cnnkit.layers.PatchWhitening`, 24 channels, its
    kernel set from training images by the recipe) and GELU; three blocks of
    conv → max-pool → batch norm → GELU → conv → batch norm → GELU (widths 64,
    256, 256; batch norms without scale; convolutions start as partial identities);
    global max pooling and a linear classifier scaled by 1/9. The classifier is
    wrapped in :class:`~keras_cnnkit.layers.TestTimeAugmentation`, so the saved
    model predicts with flips and shifts (``tta_level``).

    Args:
        num_classes: Number of classes.
        input_shape: ``(height, width, channels)`` of the raw uint8 images.
        widths: Filters of the three blocks.
        whitening: Use the patch-whitening first layer (``False``: an ordinary
            trainable 2x2 convolution of the same shape).
        tta_level: Test-time augmentation level (0, 1 or 2).
        norm_momentum: Momentum of the batch norms' moving statistics (Keras'
            convention; airbench's PyTorch 0.6).
        logit_scale: Factor on the logits.
        dtype: Keras dtype policy name, or ``None`` for the global policy.

    Returns:
        The uncompiled model. Its recipe is
        :func:`keras_cnnkit.training.cifar10_airbench_recipe`.

    Example:
        >>> model = cifar10_airbench()
        >>> model.count_params() > 1_900_000, model.output_shape
        (True, (None, 10))
    """
    inputs = keras.Input(tuple(input_shape), dtype="float32", name="images")
    x = Normalize(
        scale=1.0 / 255.0, mean=CIFAR10_MEAN, std=CIFAR10_STD, name="normalize", dtype=dtype
    )(inputs)
    channels = 2 * 2 * 2 * int(input_shape[-1])
    if whitening:
        x = PatchWhitening(2, name="whiten", dtype=dtype)(x)
    else:
        x = keras.layers.Conv2D(channels, 2, padding="valid", name="whiten", dtype=dtype)(x)
    x = keras.layers.Activation("gelu", name="whiten_act", dtype=dtype)(x)
    for b, width in enumerate(widths, start=1):
        for c in (1, 2):
            x = ConvBlock(
                int(width),
                normalization="none",
                activation=None,
                pool="max" if c == 1 else None,
                use_bias=False,
                kernel_initializer=PartialIdentity(),
                name=f"block{b}_conv{c}",
                dtype=dtype,
            )(x)
            x = BatchNorm(
                momentum=norm_momentum,
                epsilon=1e-5,
                scale=False,
                name=f"block{b}_norm{c}",
                dtype=dtype,
            )(x)
            x = keras.layers.Activation("gelu", name=f"block{b}_act{c}", dtype=dtype)(x)
    outputs = ClassifierHead(
        num_classes, pooling="max", logit_scale=logit_scale, name="head", dtype=dtype
    )(x)
    classifier = keras.Model(inputs, outputs, name="classifier")
    images = keras.Input(tuple(input_shape), dtype="uint8", name="images")
    tta = TestTimeAugmentation(classifier, level=tta_level, name="tta")
    return keras.Model(images, tta(images), name="cifar10_airbench")
