"""Counting the arithmetic of a model's forward pass."""

from __future__ import annotations

import math

import keras


def _input_shape(layer) -> tuple | None:
    shapes = getattr(layer, "_build_shapes_dict", None) or {}
    shape = next(iter(shapes.values()), None)
    return None if shape is None else tuple(shape)


def forward_flops(model: keras.Model) -> int:
    """FLOPs of one image's forward pass through every convolution and dense layer.

    A multiply-add counts as 2 FLOPs; normalization, activations and pooling are
    not counted (the convention of the fast CIFAR-10 literature, in which training
    costs 3x the forward pass). The model must be built with a fixed image size.
    Layers called more than once per forward pass (test-time augmentation) count
    once: this is the cost of one training view.

    Args:
        model: A built model (or layer).

    Returns:
        The FLOPs per image.

    Example:
        >>> inputs = keras.Input((8, 8, 3))
        >>> outputs = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
        >>> forward_flops(keras.Model(inputs, outputs))  # 2 * 8*8 * 3*3*3 * 4
        13824
    """
    total = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        shape = _input_shape(layer)
        if shape is None:
            continue
        if isinstance(layer, keras.layers.Conv2D) and not isinstance(
            layer, keras.layers.DepthwiseConv2D
        ):
            out = layer.compute_output_shape(shape)
            kh, kw, cin_per_group, cout = layer.kernel.shape
            total += 2 * out[1] * out[2] * kh * kw * cin_per_group * cout
        elif isinstance(layer, keras.layers.Dense):
            positions = math.prod(int(d) for d in shape[1:-1]) if len(shape) > 2 else 1
            total += 2 * positions * int(shape[-1]) * layer.units
    return int(total)
