"""Training-time augmentation: a random crop taken while decoding, then seeded Keras layers.

``crop`` is not a layer: the pipelines take its window while decoding (a JPEG decodes only
that window, at a reduced DCT scale when the window is at least twice the output size) and
resize the window to the output size; :func:`crop_window` is its geometry. The other keys
are seeded Keras preprocessing layers applied to batches (:func:`make_augmentation`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

from keras_cnnkit.errors import SpecError

#: Keys of an augmentation dict, in the order they are applied.
AUGMENTATIONS: tuple[str, ...] = (
    "crop",
    "flip",
    "translate",
    "rotate",
    "zoom",
    "contrast",
    "erase",
    "mixup",
    "cutmix",
)


#: Each key's share of the seed (fixed, so adding a key moves no other key's draws).
_SEED_INDEX = {
    "flip": 0,
    "translate": 1,
    "rotate": 2,
    "zoom": 3,
    "contrast": 4,
    "erase": 5,
    "mixup": 6,
    "cutmix": 7,
    "crop": 8,
}


def key_seed(seed: int | None, key: str) -> int | None:
    """The seed of one augmentation key derived from the pipeline's ``seed``."""
    return None if seed is None else int(seed) * 1000 + _SEED_INDEX[key]


@dataclasses.dataclass(frozen=True)
class CropSpec:
    """A random crop: the share of the image area kept and the window's aspect ratio.

    Attributes:
        scale: ``(min, max)`` share of the image area the window keeps, drawn uniformly.
        ratio: ``(min, max)`` width / height of the window, drawn log-uniformly.
    """

    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)


def _range(value, what: str, low_open: float, high: float | None) -> tuple[float, float]:
    """A number or a ``(min, max)`` pair within ``(low_open, high]``, for the crop spec."""
    bad = f"augment['crop'] {what} must be a number or a (min, max) pair"
    if isinstance(value, bool):
        raise SpecError(f"{bad}, got {value!r}")
    if isinstance(value, (int, float)):
        pair = (float(value), float(value))
    else:
        try:
            pair = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise SpecError(f"{bad}, got {value!r}") from None
        if len(pair) != 2:
            raise SpecError(f"{bad}, got {value!r}")
    lo, hi = pair
    limit = "" if high is None else f" and <= {high:g}"
    if not (
        math.isfinite(lo)
        and math.isfinite(hi)
        and low_open < lo <= hi
        and (high is None or hi <= high)
    ):
        raise SpecError(
            f"augment['crop'] {what} must be > {low_open:g}{limit} with min <= max, got {value!r}"
        )
    return lo, hi


def crop_spec(augment) -> CropSpec | None:
    """The :class:`CropSpec` of an ``augment`` dict's ``"crop"`` value, or ``None``.

    ``"crop"`` may be ``True`` (Inception-style defaults: 8% to 100% of the area, aspect
    ratio 3/4 to 4/3); a number ``s`` (keep ``s`` to 100% of the area); a ``(min, max)``
    pair of area shares (``(s, s)`` keeps a fixed share); or a dict with ``"scale"`` (a
    number, a fixed share, or a pair) and ``"ratio"`` (a number, a fixed width / height,
    or a pair).

    Args:
        augment: The ``augment`` argument of a pipeline.

    Returns:
        The spec, or ``None`` when there is no crop.

    Raises:
        SpecError: If the value is malformed; the message names the bad value.

    Example:
        >>> crop_spec({"crop": 0.25, "flip": True})
        CropSpec(scale=(0.25, 1.0), ratio=(0.75, 1.3333333333333333))
        >>> crop_spec({"crop": {"scale": (0.5, 0.9), "ratio": 1}}).ratio
        (1.0, 1.0)
    """
    if not isinstance(augment, Mapping) or augment.get("crop") in (None, False, 0):
        return None
    value = augment["crop"]
    if value is True:
        return CropSpec()
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"scale", "ratio"})
        if unknown:
            raise SpecError(
                f"augment['crop'] takes the keys 'scale' and 'ratio', got unknown {unknown}"
            )
        default = CropSpec()
        scale = _range(value["scale"], "scale", 0.0, 1.0) if "scale" in value else default.scale
        ratio = _range(value["ratio"], "ratio", 0.0, None) if "ratio" in value else default.ratio
        return CropSpec(scale, ratio)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, _ = _range(value, "scale", 0.0, 1.0)
        return CropSpec((lo, 1.0))
    return CropSpec(_range(value, "scale", 0.0, 1.0))


def flip_mode(augment) -> str | None:
    """The ``RandomFlip`` mode of an ``augment`` dict, or ``None`` without ``"flip"``."""
    if not isinstance(augment, Mapping) or augment.get("flip") in (None, False, 0):
        return None
    value = augment["flip"]
    mode = "horizontal" if value is True else value
    if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
        raise SpecError(f"augment['flip'] must be True or a RandomFlip mode, got {value!r}")
    return mode


#: Uniform draws per image of the crop stage: area, aspect, top, left, two flips.
CROP_DRAWS = 6


def crop_window(height, width, u: tf.Tensor, spec: CropSpec):
    """The crop window of a ``height`` x ``width`` image for the uniform draws ``u``.

    The area share is drawn uniformly from ``spec.scale`` and the aspect ratio
    log-uniformly from ``spec.ratio`` (``u[0]``, ``u[1]``); a side longer than the image
    is cut to it; the position is uniform (``u[2]``, ``u[3]``). TensorFlow ops only.

    Args:
        height: Image height (int or scalar tensor).
        width: Image width.
        u: At least 4 uniform draws in ``[0, 1)``.
        spec: The :class:`CropSpec`.

    Returns:
        ``(top, left, window_height, window_width)`` as ``int32`` scalar tensors.

    Example:
        >>> import tensorflow as tf
        >>> wide = CropSpec(scale=(0.5, 0.5), ratio=(2, 2))  # half the area, twice as wide
        >>> window = crop_window(100, 200, tf.constant([1.0, 0.5, 0.0, 0.0]), wide)
        >>> [int(v) for v in window]
        [0, 0, 71, 141]
    """
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    (s0, s1), (r0, r1) = spec.scale, spec.ratio
    area = h * w * (s0 + (s1 - s0) * u[0])
    aspect = tf.exp(math.log(r0) + (math.log(r1) - math.log(r0)) * u[1])
    wh = tf.clip_by_value(tf.round(tf.sqrt(area / aspect)), 1.0, h)
    ww = tf.clip_by_value(tf.round(tf.sqrt(area * aspect)), 1.0, w)
    top = tf.minimum(tf.floor(u[2] * (h - wh + 1.0)), h - wh)
    left = tf.minimum(tf.floor(u[3] * (w - ww + 1.0)), w - ww)
    return tuple(tf.cast(v, tf.int32) for v in (top, left, wh, ww))


def flip_image(image: tf.Tensor, u: tf.Tensor, mode: str | None) -> tf.Tensor:
    """Mirror one image left-right when ``u[4] < 0.5`` and/or top-bottom when ``u[5] < 0.5``.

    Args:
        image: ``(height, width, channels)`` pixels.
        u: The :data:`CROP_DRAWS` uniform draws of the image.
        mode: A ``RandomFlip`` mode, or ``None`` (no flip).

    Returns:
        The pixels, flipped or not.
    """
    if mode in ("horizontal", "horizontal_and_vertical"):
        image = tf.cond(u[4] < 0.5, lambda: tf.reverse(image, [1]), lambda: image)
    if mode in ("vertical", "horizontal_and_vertical"):
        image = tf.cond(u[5] < 0.5, lambda: tf.reverse(image, [0]), lambda: image)
    return image


def _pair(value, key: str) -> tuple[float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), float(value)
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"augment[{key!r}] must be a number or a pair, got {value!r}") from exc
    return a, b


def make_augmentation(
    augment: Mapping | Sequence | None, seed: int | None = None
) -> tuple[list[keras.layers.Layer], keras.layers.Layer | None]:
    """Build the augmentation layers for an ``augment`` argument.

    ``augment`` is a dict whose keys (any of :data:`AUGMENTATIONS`) map to:

    - ``crop``: a random window resized to the output size (see :func:`crop_spec`). It
      is not a layer: the pipelines take it while decoding each image, and then flip
      each image there too, so with ``crop`` no layer is returned for ``crop`` or
      ``flip``;
    - ``flip``: ``"horizontal"``, ``"vertical"``, ``"horizontal_and_vertical"`` or ``True``
      (horizontal) for ``keras.layers.RandomFlip``;
    - ``translate``: a fraction or ``(height, width)`` fractions (``RandomTranslation``);
    - ``rotate``: a fraction of a full turn (``RandomRotation``);
    - ``zoom``: a fraction (``RandomZoom``);
    - ``contrast``: a factor (``RandomContrast``);
    - ``erase``: the probability of erasing a random rectangle (``RandomErasing``,
      "cutout");
    - ``mixup``: the alpha of ``MixUp``; ``cutmix``: the factor of ``CutMix``. These
      mix pairs of images and their labels, so labels become one-hot.

    It may also be a list of Keras preprocessing layers, applied in order.

    Each layer gets a seed derived from ``seed``, so the same seed gives the same
    augmented batches.

    Args:
        augment: The augmentation spec, or ``None``.
        seed: Base seed, or ``None`` for unseeded randomness.

    Returns:
        ``(image_layers, mix_layer)``: layers applied to the images of a batch, and the
        ``MixUp``/``CutMix`` layer applied to images and labels together (or ``None``).

    Raises:
        SpecError: On an unknown key or a value of the wrong type.

    Example:
        >>> layers, mix = make_augmentation({"flip": True, "translate": 0.1}, seed=0)
        >>> [type(layer).__name__ for layer in layers], mix
        (['RandomFlip', 'RandomTranslation'], None)
    """
    if augment is None:
        return [], None
    if isinstance(augment, keras.layers.Layer):
        augment = [augment]
    if isinstance(augment, Sequence) and not isinstance(augment, str):
        layers = list(augment)
        for layer in layers:
            if not isinstance(layer, keras.layers.Layer):
                raise SpecError(f"augment list items must be Keras layers, got {layer!r}")
        mix = [layer for layer in layers if type(layer).__name__ in ("MixUp", "CutMix")]
        if len(mix) > 1:
            raise SpecError("augment may contain at most one MixUp or CutMix layer")
        return [layer for layer in layers if layer not in mix], (mix[0] if mix else None)
    if not isinstance(augment, Mapping):
        raise SpecError(f"augment must be a dict or a list of Keras layers, got {augment!r}")
    unknown = sorted(set(augment) - set(AUGMENTATIONS))
    if unknown:
        raise SpecError(f"unknown augmentation(s) {unknown}; expected keys of {AUGMENTATIONS}")
    if "mixup" in augment and "cutmix" in augment:
        raise SpecError("augment may use 'mixup' or 'cutmix', not both")

    cropped = crop_spec(augment) is not None  # validates the crop value
    layers: list[keras.layers.Layer] = []
    mix = None
    for key in AUGMENTATIONS:
        if key not in augment or augment[key] in (None, False, 0):
            continue
        value = augment[key]
        s = key_seed(seed, key)
        if key == "flip":
            mode = flip_mode(augment)
            if not cropped:
                layers.append(keras.layers.RandomFlip(mode, seed=s, name="random_flip"))
        elif key == "translate":
            h, w = _pair(value, key)
            layers.append(
                keras.layers.RandomTranslation(
                    h, w, fill_mode="reflect", seed=s, name="random_translation"
                )
            )
        elif key == "rotate":
            layers.append(keras.layers.RandomRotation(float(value), seed=s, name="random_rotation"))
        elif key == "zoom":
            layers.append(keras.layers.RandomZoom(float(value), seed=s, name="random_zoom"))
        elif key == "contrast":
            layers.append(
                keras.layers.RandomContrast(
                    float(value), value_range=(0, 255), seed=s, name="random_contrast"
                )
            )
        elif key == "erase":
            layers.append(
                keras.layers.RandomErasing(
                    factor=float(value), value_range=(0, 255), seed=s, name="random_erasing"
                )
            )
        elif key == "mixup":
            mix = keras.layers.MixUp(alpha=float(value), seed=s, name="mixup")
        elif key == "cutmix":
            mix = keras.layers.CutMix(factor=float(value), seed=s, name="cutmix")
    return layers, mix
