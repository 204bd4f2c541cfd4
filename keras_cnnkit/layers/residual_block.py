"""A residual block: ``x + f(x)`` with ``f`` a few conv blocks."""

from __future__ import annotations

import keras

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers.conv_block import ConvBlock
from keras_cnnkit.layers.normalization import make_normalization


@serializable
class ResidualBlock(keras.layers.Layer):
    """``shortcut(x) + f(x)``, where ``f`` is ``convs`` :class:`ConvBlock` layers.

    Each conv block is conv → normalization → activation (the ResNet-9 form used by
    the fast CIFAR-10 recipes). The shortcut is the identity when shapes match, and
    a 1x1 convolution with normalization (a projection) when ``filters`` or
    ``strides`` change the shape.

    Args:
        filters: Output channels of every convolution.
        convs: Number of conv blocks in the residual branch (at least 1).
        kernel_size: Kernel size of the branch convolutions.
        strides: Stride of the first convolution (and of the projection).
        normalization: Normalization of each conv block (see
            :func:`~keras_cnnkit.layers.make_normalization`).
        norm_momentum: Momentum of the batch normalizations' moving statistics.
        activation: Activation of each conv block.
        kernel_initializer: Initializer of every convolution kernel.
        kernel_regularizer: Regularizer of every convolution kernel.
        **kwargs: Standard layer arguments.

    Raises:
        SpecError: If ``convs`` is smaller than 1.

    Example:
        >>> import numpy as np
        >>> block = ResidualBlock(8)
        >>> tuple(block(np.zeros((2, 16, 16, 8), "float32")).shape)
        (2, 16, 16, 8)
    """

    def __init__(
        self,
        filters: int,
        convs: int = 2,
        kernel_size: int = 3,
        strides: int = 1,
        normalization: str | None = "batch",
        norm_momentum: float = 0.99,
        activation: str | None = "relu",
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(convs) < 1:
            raise SpecError(f"a residual block needs at least one conv, got convs={convs}")
        self.filters = int(filters)
        self.convs = int(convs)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.normalization = normalization
        self.norm_momentum = float(norm_momentum)
        self.activation = activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.branch = [
            ConvBlock(
                self.filters,
                self.kernel_size,
                strides=self.strides if i == 0 else 1,
                normalization=normalization,
                norm_momentum=self.norm_momentum,
                activation=activation,
                kernel_initializer=self.kernel_initializer,
                kernel_regularizer=self.kernel_regularizer,
                name=f"conv{i + 1}",
                dtype=self.dtype_policy,
            )
            for i in range(self.convs)
        ]
        self.projection = None
        self.projection_norm = None
        self.add = keras.layers.Add(name="add", dtype=self.dtype_policy)

    def build(self, input_shape):
        shape = tuple(input_shape)
        if shape[-1] != self.filters or self.strides != 1:
            self.projection = keras.layers.Conv2D(
                self.filters,
                1,
                strides=self.strides,
                use_bias=self.normalization in (None, "none"),
                kernel_initializer=self.kernel_initializer,
                kernel_regularizer=self.kernel_regularizer,
                name="projection",
                dtype=self.dtype_policy,
            )
            self.projection.build(shape)
            self.projection_norm = make_normalization(
                self.normalization,
                name="projection_norm",
                channels=self.filters,
                momentum=self.norm_momentum,
                dtype=self.dtype_policy,
            )
            if self.projection_norm is not None:
                self.projection_norm.build(self.projection.compute_output_shape(shape))
        for block in self.branch:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for block in self.branch:
            x = block(x, training=training)
        shortcut = inputs
        if self.projection is not None:
            shortcut = self.projection(inputs)
            if self.projection_norm is not None:
                shortcut = self.projection_norm(shortcut, training=training)
        return self.add([shortcut, x])

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for block in self.branch:
            shape = block.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            convs=self.convs,
            kernel_size=self.kernel_size,
            strides=self.strides,
            normalization=self.normalization,
            norm_momentum=self.norm_momentum,
            activation=self.activation,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
        )
        return config
