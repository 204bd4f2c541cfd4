"""Pooling, hidden dense layers and the class scores."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import keras

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import SpecError

POOLINGS = ("flatten", "avg", "max", "avgmax")
#: Output activations of a head: probabilities, multi-label probabilities or logits.
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", None)


def check_num_classes(num_classes) -> int:
    """Return ``num_classes`` if it is an integer >= 0 (0 asks for pooled features).

    Args:
        num_classes: The value to check.

    Returns:
        It, as an ``int``.

    Raises:
        SpecError: If it is not a non-negative integer.

    Example:
        >>> check_num_classes(0)
        0
    """
    integral = isinstance(num_classes, numbers.Integral) and not isinstance(num_classes, bool)
    if not integral or num_classes < 0:
        raise SpecError(
            f"num_classes must be >= 0 (0 for the pooled features), got {num_classes!r}"
        )
    return int(num_classes)


@serializable
class ClassifierHead(keras.layers.Layer):
    """Turn a feature map into class scores.

    ``pooling`` (flatten, global average, global max, or both concatenated) →
    for each hidden layer: Dense → activation → Dropout → a final Dense with
    ``num_classes`` units. With no hidden layers, ``dropout`` is applied right
    before the final Dense. The final Dense always computes in ``float32``, so a
    model trained in mixed precision still outputs ``float32`` scores.

    With ``num_classes=0`` there is no final Dense and no output activation: the
    head returns the pooled features (after the hidden layers, if any), cast to
    ``float32`` (timm's ``num_classes=0``).

    Args:
        num_classes: Number of classes, or 0 for the pooled features.
        pooling: ``"flatten"``, ``"avg"``, ``"max"`` or ``"avgmax"``.
        hidden_units: Units of each hidden Dense layer.
        dropout: Dropout rate (0 disables it).
        activation: Activation of the hidden layers.
        output_activation: ``"softmax"`` (probabilities), ``None`` (logits) or
            ``"sigmoid"`` (multi-label).
        logit_scale: Optional factor multiplying the logits before the output
            activation (a temperature, e.g. 0.125 in fast CIFAR-10 recipes).
        kernel_regularizer: Regularizer of the Dense kernels.
        **kwargs: Standard layer arguments.

    Raises:
        SpecError: On an unknown pooling or output activation, or a negative
            ``num_classes``.

    Example:
        >>> import numpy as np
        >>> head = ClassifierHead(10, pooling="avg")
        >>> tuple(head(np.zeros((2, 4, 4, 16), "float32")).shape)
        (2, 10)
        >>> tuple(ClassifierHead(0, pooling="avgmax")(np.zeros((2, 4, 4, 16), "float32")).shape)
        (2, 32)
    """

    def __init__(
        self,
        num_classes: int,
        pooling: str = "avg",
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
        activation: str = "relu",
        output_activation: str | None = "softmax",
        logit_scale: float | None = None,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise SpecError(f"head pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise SpecError(
                f"head output_activation must be one of {list(OUTPUT_ACTIVATIONS)}, "
                f"got {output_activation!r}"
            )
        self.num_classes = check_num_classes(num_classes)
        self.pooling = pooling
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.dropout = float(dropout)
        self.activation = activation
        self.output_activation = output_activation
        self.logit_scale = None if logit_scale is None else float(logit_scale)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        policy = self.dtype_policy
        self.pool_layers = {
            "flatten": [keras.layers.Flatten(name="flatten", dtype=policy)],
            "avg": [keras.layers.GlobalAveragePooling2D(name="avg_pool", dtype=policy)],
            "max": [keras.layers.GlobalMaxPooling2D(name="max_pool", dtype=policy)],
            "avgmax": [
                keras.layers.GlobalAveragePooling2D(name="avg_pool", dtype=policy),
                keras.layers.GlobalMaxPooling2D(name="max_pool", dtype=policy),
            ],
        }[pooling]
        self.hidden = [
            keras.layers.Dense(
                units,
                activation=activation,
                kernel_regularizer=self.kernel_regularizer,
                name=f"hidden{i + 1}",
                dtype=policy,
            )
            for i, units in enumerate(self.hidden_units)
        ]
        n_drop = len(self.hidden) if self.hidden else 1
        self.drops = (
            [keras.layers.Dropout(self.dropout, name=f"dropout{i + 1}") for i in range(n_drop)]
            if self.dropout
            else []
        )
        self.logits = (
            keras.layers.Dense(
                self.num_classes,
                kernel_regularizer=self.kernel_regularizer,
                name="logits",
                dtype="float32",
            )
            if self.num_classes
            else None
        )
        self.out_act = (
            keras.layers.Activation(output_activation, name="probs", dtype="float32")
            if output_activation and self.num_classes
            else None
        )

    def _pooled_shape(self, input_shape):
        shapes = [p.compute_output_shape(tuple(input_shape)) for p in self.pool_layers]
        return shapes[0][:-1] + (sum(s[-1] for s in shapes),)

    def _features_shape(self, input_shape):
        shape = self._pooled_shape(input_shape)
        for units in self.hidden_units:
            shape = shape[:-1] + (units,)
        return shape

    def build(self, input_shape):
        shape = self._pooled_shape(input_shape)
        for dense in self.hidden:
            dense.build(shape)
            shape = dense.compute_output_shape(shape)
        if self.logits is not None:
            self.logits.build(shape)

    def call(self, inputs, training=None):
        pooled = [p(inputs) for p in self.pool_layers]
        x = pooled[0] if len(pooled) == 1 else keras.ops.concatenate(pooled, axis=-1)
        if self.hidden:
            for i, dense in enumerate(self.hidden):
                x = dense(x)
                if self.drops:
                    x = self.drops[i](x, training=training)
        elif self.drops:
            x = self.drops[0](x, training=training)
        if self.logits is None:
            return keras.ops.cast(x, "float32")
        x = self.logits(x)
        if self.logit_scale is not None:
            x = x * self.logit_scale
        if self.out_act is not None:
            x = self.out_act(x)
        return x

    def compute_output_shape(self, input_shape):
        if not self.num_classes:
            return tuple(self._features_shape(tuple(input_shape)))
        return (input_shape[0], self.num_classes)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            pooling=self.pooling,
            hidden_units=list(self.hidden_units),
            dropout=self.dropout,
            activation=self.activation,
            output_activation=self.output_activation,
            logit_scale=self.logit_scale,
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config
