"""Training-time augmentation built from seeded Keras preprocessing layers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras

from keras_cnnkit.errors import SpecError

#: Keys of an augmentation dict, in the order the layers are applied.
AUGMENTATIONS: tuple[str, ...] = (
    "flip",
    "translate",
    "rotate",
    "zoom",
    "contrast",
    "erase",
    "mixup",
    "cutmix",
)


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

    def layer_seed(i: int) -> int | None:
        return None if seed is None else int(seed) * 1000 + i

    layers: list[keras.layers.Layer] = []
    mix = None
    for i, key in enumerate(AUGMENTATIONS):
        if key not in augment or augment[key] in (None, False, 0):
            continue
        value = augment[key]
        s = layer_seed(i)
        if key == "flip":
            mode = "horizontal" if value is True else value
            if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
                raise SpecError(f"augment['flip'] must be True or a RandomFlip mode, got {value!r}")
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
