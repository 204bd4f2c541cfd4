"""The resize / crop / normalize steps as one serializable Keras layer."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers import PRESETS, Normalize

#: Ways to bring an image to ``image_size``.
RESIZE_MODES: tuple[str, ...] = ("stretch", "crop", "pad")

#: Interpolations accepted by ``keras.layers.Resizing``.
INTERPOLATIONS: tuple[str, ...] = (
    "bilinear",
    "nearest",
    "bicubic",
    "lanczos3",
    "lanczos5",
    "area",
)


def check_image_size(image_size) -> tuple[int, int]:
    """Validate ``image_size`` (an int or ``(height, width)``) and return it as a pair."""
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError) as exc:
        raise SpecError(
            f"image_size must be an int or (height, width), got {image_size!r}"
        ) from exc
    if h <= 0 or w <= 0:
        raise SpecError(f"image_size must be positive, got {image_size!r}")
    return h, w


def make_normalize(normalize, name: str = "normalize") -> Normalize | None:
    """Build the :class:`~keras_cnnkit.layers.Normalize` layer for a ``normalize`` argument.

    Args:
        normalize: ``None`` (no normalization), a preset name of
            :data:`keras_cnnkit.layers.PRESETS`, a dict of ``Normalize`` arguments
            (e.g. ``{"mean": [...], "std": [...]}`` from :func:`compute_mean_std`),
            or a ``Normalize`` layer.
        name: Layer name.

    Returns:
        The layer, or ``None``.

    Raises:
        SpecError: If the preset is unknown or the argument has the wrong type.
    """
    if normalize is None:
        return None
    if isinstance(normalize, Normalize):
        return normalize
    if isinstance(normalize, str):
        if normalize not in PRESETS:
            raise SpecError(
                f"unknown normalize preset {normalize!r}; expected one of {list(PRESETS)}"
            )
        return Normalize.from_preset(normalize, name=name)
    if isinstance(normalize, dict):
        return Normalize(**normalize, name=name)
    raise SpecError(
        f"normalize must be None, a preset name, a dict or a Normalize layer, got {normalize!r}"
    )


@serializable
class ImagePreprocessing(keras.layers.Layer):
    """Resize, optionally center-crop, and normalize images inside a model.

    The same steps the ``keras_cnnkit.preprocessing`` pipelines apply, as one layer:
    put it first in a model and the saved model takes raw images of any size and does
    its own preprocessing.

    ``resize_mode="stretch"`` resizes to ``image_size`` ignoring the aspect ratio;
    ``"crop"`` crops the largest centered window of the target aspect ratio first;
    ``"pad"`` pads with zeros to the target aspect ratio first. With ``center_crop``
    (a fraction in (0, 1]), the image is resized to ``image_size / center_crop`` and
    the central ``image_size`` window kept (the usual "resize 256, crop 224").

    Args:
        image_size: Output ``(height, width)`` (or one int for a square).
        resize_mode: One of ``"stretch"``, ``"crop"``, ``"pad"``.
        interpolation: One of :data:`INTERPOLATIONS`.
        center_crop: Fraction of the resized image kept, or ``None``.
        antialias: Antialias when downsampling.
        normalize: ``None``, a preset name or a dict of ``Normalize`` arguments.
        **kwargs: Standard layer arguments.

    Raises:
        SpecError: If an argument is out of range or unknown.

    Example:
        >>> import numpy as np
        >>> layer = ImagePreprocessing((8, 8), resize_mode="crop", normalize="unit")
        >>> tuple(layer(np.zeros((2, 20, 10, 3), "uint8")).shape)
        (2, 8, 8, 3)
    """

    def __init__(
        self,
        image_size: int | Sequence[int] = (224, 224),
        resize_mode: str = "stretch",
        interpolation: str = "bilinear",
        center_crop: float | None = None,
        antialias: bool = False,
        normalize: str | dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_size = check_image_size(image_size)
        if resize_mode not in RESIZE_MODES:
            raise SpecError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
        if interpolation not in INTERPOLATIONS:
            raise SpecError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        if center_crop is not None and not 0.0 < float(center_crop) <= 1.0:
            raise SpecError(f"center_crop must be a fraction in (0, 1], got {center_crop!r}")
        if isinstance(normalize, Normalize):
            normalize = {k: v for k, v in normalize.get_config().items() if k in _NORM_KEYS}
        self.resize_mode = resize_mode
        self.interpolation = interpolation
        self.center_crop = None if center_crop is None else float(center_crop)
        self.antialias = bool(antialias)
        self.normalize = normalize
        h, w = self.image_size
        if self.center_crop is not None:
            rh, rw = round(h / self.center_crop), round(w / self.center_crop)
        else:
            rh, rw = h, w
        self.resizing = keras.layers.Resizing(
            rh,
            rw,
            interpolation=interpolation,
            crop_to_aspect_ratio=resize_mode == "crop",
            pad_to_aspect_ratio=resize_mode == "pad",
            antialias=self.antialias,
            dtype="float32",
            name="resizing",
        )
        self.cropping = (
            keras.layers.CenterCrop(h, w, dtype="float32", name="center_crop")
            if self.center_crop is not None
            else None
        )
        self.normalization = make_normalize(normalize)

    def build(self, input_shape):
        # Resizing, CenterCrop and Normalize hold no weights.
        self.built = True

    def resize(self, images):
        """Resize (and center-crop) without normalizing; returns float32 0..255 values."""
        x = self.resizing(ops.cast(images, "float32"))
        if self.cropping is not None:
            x = self.cropping(x)
        return x

    def call(self, inputs):
        x = self.resize(inputs)
        if self.normalization is not None:
            x = self.normalization(x)
        return x

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], *self.image_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=list(self.image_size),
            resize_mode=self.resize_mode,
            interpolation=self.interpolation,
            center_crop=self.center_crop,
            antialias=self.antialias,
            normalize=self.normalize,
        )
        return config


_NORM_KEYS = ("scale", "offset", "mean", "std", "channel_order")
