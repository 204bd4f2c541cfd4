"""Pooling, hidden dense layers and the class scores."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import SpecError

POOLINGS = ("flatten", "avg", "max", "avgmax")


@serializable
class ClassifierHead(keras.layers.Layer):
    """Turn a feature map into class scores.

    ``pooling`` (flatten, global average, global max, or both concatenated) →
    for each hidden layer: Dense → activation → Dropout → a final Dense with
    ``num_classes`` units. With no hidden layers, ``dropout`` is applied right
    before the final Dense. The final Dense always computes in ``float32``, so a
    model trained in mixed precision still outputs ``float32`` scores.

    Args:
        num_classes: Number of classes.
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
        SpecError: On an unknown pooling or a non-positive ``num_classes``.

    Example:
        >>> import numpy as np
        >>> head = ClassifierHead(10, pooling="avg")
        >>> tuple(head(np.zeros((2, 4, 4, 16), "float32")).shape)
        (2, 10)
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
            raise SpecError(f"head pooling must be one of {POOLINGS}, got {pooling!r}")
        if int(num_classes) < 1:
            raise SpecError(f"num_classes must be positive, got {num_classes!r}")
        self.num_classes = int(num_classes)
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
        self.logits = keras.layers.Dense(
            self.num_classes,
            kernel_regularizer=self.kernel_regularizer,
            name="logits",
            dtype="float32",
        )
        self.out_act = (
            keras.layers.Activation(output_activation, name="probs", dtype="float32")
            if output_activation
            else None
        )

    def _pooled_shape(self, input_shape):
        shapes = [p.compute_output_shape(tuple(input_shape)) for p in self.pool_layers]
        return shapes[0][:-1] + (sum(s[-1] for s in shapes),)

    def build(self, input_shape):
        shape = self._pooled_shape(input_shape)
        for dense in self.hidden:
            dense.build(shape)
            shape = dense.compute_output_shape(shape)
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
        x = self.logits(x)
        if self.logit_scale is not None:
            x = x * self.logit_scale
        if self.out_act is not None:
            x = self.out_act(x)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs.shape[0], self.num_classes), dtype="float32")

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
