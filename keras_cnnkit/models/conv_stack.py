"""Build a convolutional network from a declarative spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras

from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers import ClassifierHead, ConvBlock, Normalize, ResidualBlock
from keras_cnnkit.layers.classifier_head import check_num_classes
from keras_cnnkit.models.spec import ConvStackSpec, StageSpec, validate_spec


def conv_stack(
    spec: ConvStackSpec | Mapping[str, Any],
    *,
    input_shape: Sequence[int | None] = (32, 32, 3),
    num_classes: int = 10,
    input_dtype: str = "uint8",
    dtype: str | None = None,
    name: str = "conv_stack",
) -> keras.Model:
    """Build a functional ``keras.Model`` from a declarative spec.

    The model takes raw pixels (``uint8`` 0..255 by default) and carries its own
    preprocessing (a :class:`~keras_cnnkit.layers.Normalize` layer), followed by an
    optional stem, the stages (:class:`~keras_cnnkit.layers.ConvBlock` and
    :class:`~keras_cnnkit.layers.ResidualBlock` layers named ``stage{s}_conv{c}`` and
    ``stage{s}_res{r}``) and a :class:`~keras_cnnkit.layers.ClassifierHead`.

    Args:
        spec: A :class:`ConvStackSpec`, or plain data for
            :meth:`ConvStackSpec.from_dict`.
        input_shape: ``(height, width, channels)``, any channel count; height and
            width may be ``None`` with a global-pooling head.
        num_classes: Number of output classes; 0 for the pooled features
            (the head without its last Dense layer).
        input_dtype: Dtype of the model's input (``"uint8"`` for raw pixels;
            ``"float32"`` accepts float pixels in the same 0..255 range).
        dtype: A Keras dtype policy name for every layer (e.g.
            ``"mixed_bfloat16"``), or ``None`` for the global policy. The class
            scores are always ``float32``.
        name: Name of the model.

    Returns:
        The uncompiled model.

    Raises:
        SpecError: If the spec cannot work for ``input_shape``, naming the stage.

    Example:
        >>> model = conv_stack({"stages": [8, 16], "head": {"pooling": "avg"}},
        ...                    input_shape=(28, 28, 1), num_classes=10)
        >>> model.output_shape
        (None, 10)
    """
    if not isinstance(spec, ConvStackSpec):
        if not isinstance(spec, Mapping):
            raise SpecError(f"spec must be a ConvStackSpec or a mapping, got {type(spec).__name__}")
        spec = ConvStackSpec.from_dict(spec)
    validate_spec(spec, input_shape)
    check_num_classes(num_classes)

    regularizer = keras.regularizers.L2(spec.weight_decay) if spec.weight_decay else None
    common = {
        "kernel_initializer": spec.kernel_initializer,
        "kernel_regularizer": regularizer,
        "dtype": dtype,
    }

    inputs = keras.Input(tuple(input_shape), dtype=input_dtype, name="images")
    x = Normalize.from_preset(spec.preprocessing, name="normalize", dtype=dtype)(inputs)
    if spec.stem_filters is not None:
        x = ConvBlock(
            spec.stem_filters,
            normalization=spec.normalization,
            norm_momentum=spec.norm_momentum,
            activation=spec.activation,
            name="stem",
            **common,
        )(x)
    for s, stage in enumerate(spec.stages, start=1):
        x = _apply_stage(x, stage, spec, name=f"stage{s}", **common)
    outputs = ClassifierHead(
        num_classes,
        pooling=spec.head.pooling,
        hidden_units=spec.head.hidden_units,
        dropout=spec.head.dropout,
        activation=spec.activation,
        output_activation=spec.head.output_activation,
        logit_scale=spec.head.logit_scale,
        kernel_regularizer=regularizer,
        name="head",
        dtype=dtype,
    )(x)
    return keras.Model(inputs, outputs, name=name)


def _apply_stage(x, stage: StageSpec, spec: ConvStackSpec, *, name: str, **common):
    norm = stage.normalization or spec.normalization
    act = stage.activation or spec.activation
    paddings = stage.paddings()
    for c, padding in enumerate(paddings, start=1):
        last = c == len(paddings)
        x = ConvBlock(
            stage.filters,
            stage.kernel_size,
            strides=stage.strides if c == 1 else 1,
            padding=padding,
            normalization=norm,
            norm_momentum=spec.norm_momentum,
            activation=act,
            pool=stage.pool if last else None,
            pool_size=stage.pool_size,
            dropout=stage.dropout if last else 0.0,
            name=f"{name}_conv{c}",
            **common,
        )(x)
    for r in range(1, int(stage.residual) + 1):
        x = ResidualBlock(
            stage.filters,
            kernel_size=stage.kernel_size,
            strides=stage.strides if (r == 1 and not paddings) else 1,
            normalization=norm,
            norm_momentum=spec.norm_momentum,
            activation=act,
            name=f"{name}_res{r}",
            **common,
        )(x)
    return x
