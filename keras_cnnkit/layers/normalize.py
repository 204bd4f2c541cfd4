"""Pixel scaling and normalization inside the model."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import SpecError

#: Pixel normalization presets, named after the ``mode`` of
#: ``keras.applications.imagenet_utils.preprocess_input`` where one exists.
#: Each maps raw 0..255 RGB pixels to what a family of weights expects.
PRESETS: dict[str, dict] = {
    # x / 255: the 0..1 range (CIFAR recipes, custom models).
    "unit": {"scale": 1.0 / 255.0, "offset": 0.0},
    # x / 127.5 - 1: the -1..1 range (Inception, Xception, MobileNet, ResNetV2, NASNet).
    "tf": {"scale": 1.0 / 127.5, "offset": -1.0},
    # RGB to BGR, minus the ImageNet BGR mean (VGG16/19, ResNet50/101/152).
    "caffe": {"channel_order": "bgr", "mean": (103.939, 116.779, 123.68)},
    # x / 255, minus the ImageNet mean, over its std (DenseNet).
    "torch": {"scale": 1.0 / 255.0, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
    # Unchanged 0..255 (EfficientNet, ConvNeXt, ...: the model scales itself).
    "raw": {},
}


@serializable
class Normalize(keras.layers.Layer):
    """Cast raw pixels to the compute dtype and normalize them.

    Computes ``((x * scale + offset)[..., order] - mean) / std`` per channel, so a
    model takes raw ``uint8`` pixels and carries its own preprocessing: a saved
    model needs no separate preprocessing code. ``channel_order="bgr"`` reverses
    the channel axis first (the "caffe" convention).

    Args:
        scale: Multiplier applied to the raw pixels.
        offset: Added after scaling.
        mean: Per-channel mean subtracted after scaling (a number or one per channel).
        std: Per-channel standard deviation divided by (a number or one per channel).
        channel_order: ``"rgb"`` (unchanged) or ``"bgr"`` (channels reversed).
        **kwargs: Standard layer arguments (``name``, ``dtype``).

    Raises:
        SpecError: If ``std`` contains zero or ``channel_order`` is unknown.

    Example:
        >>> import numpy as np
        >>> layer = Normalize.from_preset("tf")
        >>> layer(np.array([[0, 255]], "uint8")).numpy().tolist()
        [[-1.0, 1.0]]
    """

    def __init__(
        self,
        scale: float = 1.0,
        offset: float = 0.0,
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        channel_order: str = "rgb",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if channel_order not in ("rgb", "bgr"):
            raise SpecError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        if std is not None and any(float(s) == 0.0 for s in _as_list(std)):
            raise SpecError(f"std must not contain zero, got {std!r}")
        self.scale = float(scale)
        self.offset = float(offset)
        self.mean = None if mean is None else _as_list(mean)
        self.std = None if std is None else _as_list(std)
        self.channel_order = channel_order

    @classmethod
    def from_preset(cls, preset: str, **kwargs) -> Normalize:
        """Create the layer for a named preset (see :data:`PRESETS`).

        Args:
            preset: One of ``"unit"``, ``"tf"``, ``"caffe"``, ``"torch"``, ``"raw"``.
            **kwargs: Layer arguments (``name``, ``dtype``).

        Returns:
            The configured layer.

        Raises:
            SpecError: If the preset is unknown.
        """
        if preset not in PRESETS:
            raise SpecError(
                f"unknown normalization preset {preset!r}; expected one of {list(PRESETS)}"
            )
        return cls(**PRESETS[preset], **kwargs)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.scale != 1.0:
            x = x * ops.cast(self.scale, x.dtype)
        if self.offset != 0.0:
            x = x + ops.cast(self.offset, x.dtype)
        if self.channel_order == "bgr":
            x = ops.flip(x, axis=-1)
        if self.mean is not None:
            x = x - ops.cast(ops.convert_to_tensor(self.mean), x.dtype)
        if self.std is not None:
            x = x / ops.cast(ops.convert_to_tensor(self.std), x.dtype)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            scale=self.scale,
            offset=self.offset,
            mean=self.mean,
            std=self.std,
            channel_order=self.channel_order,
        )
        return config


def _as_list(value: float | Sequence[float]) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)]
    return [float(v) for v in value]
