"""Conv2D, normalization, activation, pooling and dropout as one layer."""

from __future__ import annotations

import keras

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers.normalization import NORMALIZATIONS, make_normalization

POOLS = ("max", "avg", None)


@serializable
class ConvBlock(keras.layers.Layer):
    """Conv2D → optional normalization → activation → optional pooling → optional dropout.

    The building block of :func:`keras_cnnkit.conv_stack`. The convolution slides
    one small set of weights over every position of its input, so a pattern it has
    learnt is detected wherever it appears; pooling then shrinks the feature map
    while keeping the strongest responses.

    Args:
        filters: Number of output channels.
        kernel_size: Size of the square convolution window.
        strides: Convolution stride.
        padding: ``"same"`` or ``"valid"``.
        normalization: One of :data:`~keras_cnnkit.layers.NORMALIZATIONS`
            (default ``"batch"``, the fused :class:`BatchNorm`).
        norm_momentum: Momentum of the batch normalization's moving statistics
            (``0.99``, Keras' default; ``0.9`` suits short, fast schedules).
        activation: Any Keras activation name, or ``None``.
        pool: ``"max"``, ``"avg"`` or ``None``.
        pool_size: Pooling window and stride.
        dropout: Dropout rate after pooling (0 disables it).
        use_bias: Whether the convolution has a bias; ``None`` means "only when
            there is no normalization" (a bias before batch norm is wasted).
        kernel_initializer: Initializer of the convolution kernel.
        kernel_regularizer: Regularizer of the convolution kernel.
        **kwargs: Standard layer arguments (``name``, ``dtype``, ``trainable``).

    Raises:
        SpecError: On an unknown padding, pooling or normalization.

    Example:
        >>> import numpy as np
        >>> block = ConvBlock(8, pool="max")
        >>> tuple(block(np.zeros((2, 32, 32, 3), "float32")).shape)
        (2, 16, 16, 8)
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        padding: str = "same",
        normalization: str | None = "batch",
        norm_momentum: float = 0.99,
        activation: str | None = "relu",
        pool: str | None = None,
        pool_size: int = 2,
        dropout: float = 0.0,
        use_bias: bool | None = None,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if padding not in ("same", "valid"):
            raise SpecError(f"padding must be 'same' or 'valid', got {padding!r}")
        if pool not in POOLS:
            raise SpecError(f"pool must be one of {POOLS}, got {pool!r}")
        if normalization not in NORMALIZATIONS and normalization is not None:
            raise SpecError(
                f"unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}"
            )
        if not 0.0 <= float(dropout) < 1.0:
            raise SpecError(f"dropout must be in [0, 1), got {dropout!r}")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.padding = padding
        self.normalization = normalization
        self.norm_momentum = float(norm_momentum)
        self.activation = activation
        self.pool = pool
        self.pool_size = int(pool_size)
        self.dropout = float(dropout)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

        has_norm = normalization not in (None, "none")
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding=padding,
            use_bias=(not has_norm) if use_bias is None else bool(use_bias),
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            name="conv",
            dtype=self.dtype_policy,
        )
        self.norm = make_normalization(
            normalization,
            name="norm",
            channels=self.filters,
            momentum=self.norm_momentum,
            dtype=self.dtype_policy,
        )
        self.act = (
            keras.layers.Activation(activation, name="act", dtype=self.dtype_policy)
            if activation
            else None
        )
        pool_cls = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}
        self.pool_layer = (
            pool_cls[pool](self.pool_size, name="pool", dtype=self.dtype_policy) if pool else None
        )
        self.drop = (
            keras.layers.Dropout(self.dropout, name="dropout", dtype=self.dtype_policy)
            if self.dropout
            else None
        )

    @property
    def _chain(self) -> list[keras.layers.Layer]:
        return [
            layer
            for layer in (self.conv, self.norm, self.act, self.pool_layer, self.drop)
            if layer is not None
        ]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._chain:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = self.conv(inputs)
        if self.norm is not None:
            x = self.norm(x, training=training)
        if self.act is not None:
            x = self.act(x)
        if self.pool_layer is not None:
            x = self.pool_layer(x)
        if self.drop is not None:
            x = self.drop(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._chain:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            normalization=self.normalization,
            norm_momentum=self.norm_momentum,
            activation=self.activation,
            pool=self.pool,
            pool_size=self.pool_size,
            dropout=self.dropout,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config
