"""ImageNet classifiers with their original top, and decoding of their predictions."""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_cnnkit.backbones.inference_mode import InferenceMode
from keras_cnnkit.backbones.registry import BackboneEntry, lookup
from keras_cnnkit.backbones.weights import _translate, keras_cache_dir, weight_path
from keras_cnnkit.errors import DataError, SpecError, StorageError
from keras_cnnkit.layers import Normalize

CLASS_INDEX_FILE = "imagenet_class_index.json"
CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)


def imagenet_classifier(
    backbone: str | BackboneEntry,
    weights: str | os.PathLike | None = "imagenet",
    *,
    name: str | None = None,
) -> keras.Model:
    """The full keras.applications network with its 1000-class ImageNet top.

    Takes raw ``uint8`` images at the backbone's default size, with the
    preprocessing the weights expect inside the model; its output goes to
    :func:`decode_predictions`.

    Args:
        backbone: A registry name or entry.
        weights: ``"imagenet"``, ``None`` or the path of a full-model
            ``.h5``/``.weights.h5`` file (with top).
        name: Model name; ``"<backbone>_imagenet"`` by default.

    Returns:
        A functional ``keras.Model`` returning ``(batch, 1000)`` probabilities.

    Raises:
        SpecError: On an unknown backbone.
        StorageError: When the weights cannot be downloaded or loaded.

    Example:
        >>> model = imagenet_classifier("mobilenetv3small", weights=None)
        >>> model.output_shape
        (None, 1000)
    """
    entry = lookup(backbone)
    shape = (entry.default_size, entry.default_size, 3)
    path = None if weights in (None, "imagenet") else weight_path(weights)
    try:
        net = entry.constructor_fn()(
            include_top=True,
            weights="imagenet" if weights == "imagenet" else None,
            input_shape=shape,
            name=entry.keras_name,
            **entry.kwargs,
        )
    except Exception as exc:
        raise _translate(entry, exc, weights) from exc
    if path is not None:
        try:
            net.load_weights(str(path))
        except Exception as exc:
            raise StorageError(
                f"weights file {str(path)!r} does not match the ImageNet classifier of backbone "
                f"{entry.name!r}: {str(exc).strip().splitlines()[0][:300]}"
            ) from exc
    inputs = keras.Input(shape, dtype="uint8", name="images")
    x = Normalize.from_preset(entry.preprocessing, name="preprocess")(inputs)
    outputs = InferenceMode(net, name=f"{entry.name}_inference")(x)
    return keras.Model(inputs, outputs, name=name or f"{entry.name}_imagenet")


def decode_predictions(preds, top: int = 5) -> list[list[tuple[str, str, float]]]:
    """Turn ImageNet probabilities into ``(wordnet id, label, score)`` tuples.

    Uses keras.applications' class index, downloaded once into the Keras cache
    (``$KERAS_HOME/models/imagenet_class_index.json``).

    Args:
        preds: ``(batch, 1000)`` scores, e.g. from :func:`imagenet_classifier`.
        top: Number of classes kept per image.

    Returns:
        One list per image of ``top`` tuples, best first.

    Raises:
        DataError: If ``preds`` is not ``(batch, 1000)``.
        SpecError: If ``top`` is not in 1..1000.
        StorageError: If the class index is not cached and cannot be downloaded;
            the message says where to put the file.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise DataError(
            f"decode_predictions expects ImageNet scores of shape (batch, 1000), got {preds.shape}"
        )
    if not 1 <= int(top) <= 1000:
        raise SpecError(f"top must be in 1..1000, got {top!r}")
    from keras.applications import imagenet_utils

    try:
        return imagenet_utils.decode_predictions(preds, top=int(top))
    except Exception as exc:
        target = keras_cache_dir() / CLASS_INDEX_FILE
        raise StorageError(
            f"could not fetch the ImageNet class index {CLASS_INDEX_FILE} "
            f"({CLASS_INDEX_URL}): {str(exc).split(' -- ')[-1][:200]}. "
            f"Without network access, copy that file to {target}"
        ) from exc
