"""Building a keras.applications backbone and loading its weights (ImageNet or a local file)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import warnings
from collections.abc import Mapping

import keras

from keras_cnnkit.backbones.registry import BackboneEntry
from keras_cnnkit.errors import SpecError, StorageError

WEIGHT_SUFFIXES = (".weights.h5", ".h5")

_URL = re.compile(r"URL fetch failure on (\S+): ")


def keras_cache_dir() -> pathlib.Path:
    """The folder where keras.applications caches downloaded weights.

    ``$KERAS_HOME/models`` when ``KERAS_HOME`` was set before Keras was imported,
    ``~/.keras/models`` otherwise (Keras' own rule).

    Returns:
        The cache folder (it may not exist yet).
    """
    try:
        from keras.src.backend.config import keras_home

        home = keras_home()
    except ImportError:  # pragma: no cover - older Keras
        home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return pathlib.Path(home) / "models"


def check_input_shape(entry: BackboneEntry, input_shape) -> tuple:
    """Validate the shape a backbone is built at: ``(height, width, channels)``.

    Args:
        entry: The backbone.
        input_shape: ``(height, width, channels)``; ``None`` sides accept any size.

    Returns:
        The shape as a tuple.

    Raises:
        SpecError: On a malformed shape or a side below the backbone's minimum size.
    """
    try:
        shape = tuple(None if s is None else int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise SpecError(
            f"input_shape must be (height, width, channels), got {input_shape!r}"
        ) from None
    if len(shape) != 3 or (shape[2] is not None and shape[2] < 1):
        raise SpecError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    small = [s for s in shape[:2] if s is not None and s < entry.min_size]
    if small:
        raise SpecError(
            f"backbone {entry.name!r} needs inputs of at least {entry.min_size}x{entry.min_size} "
            f"pixels, got input_shape={shape}; use a larger input_shape, or image_size="
            f"({entry.min_size}, {entry.min_size}) or more to resize inside the model"
        )
    return shape


def build_backbone_model(
    entry: BackboneEntry,
    input_shape,
    weights: str | os.PathLike | None = "imagenet",
    backbone_kwargs: Mapping | None = None,
) -> keras.Model:
    """Build ``entry``'s keras.applications network without its top and load weights.

    Args:
        entry: The backbone.
        input_shape: ``(height, width, channels)``.
        weights: ``"imagenet"`` (downloaded once into the Keras cache), ``None``
            (random initialization) or the path of a ``.weights.h5``/``.h5`` file
            holding the backbone's weights.
        backbone_kwargs: Extra arguments of the keras.applications constructor
            (``alpha`` for the MobileNets, ...).

    Returns:
        The backbone, named after its registry entry.

    Raises:
        SpecError: On a bad shape or constructor argument.
        StorageError: When the ImageNet weights cannot be downloaded or the file
            cannot be loaded into this backbone.
    """
    shape = check_input_shape(entry, input_shape)
    kwargs = {**entry.kwargs, **dict(backbone_kwargs or {})}
    for reserved in ("include_top", "weights", "input_shape", "input_tensor", "name", "pooling"):
        if reserved in kwargs:
            raise SpecError(f"backbone_kwargs must not set {reserved!r}; it is set by keras_cnnkit")
    path = None
    if weights is not None and weights != "imagenet":
        path = weight_path(weights)
    build = entry.constructor_fn()
    try:
        model = build(
            include_top=False,
            weights="imagenet" if weights == "imagenet" else None,
            input_shape=shape,
            name=entry.keras_name,
            **kwargs,
        )
    except Exception as exc:  # keras raises a bare Exception on download failures
        raise _translate(entry, exc, weights) from exc
    if path is not None:
        load_backbone_weights(model, path, entry=entry)
    return model


def weight_path(weights: str | os.PathLike) -> pathlib.Path:
    """Check that ``weights`` names an existing ``.weights.h5``/``.h5`` file.

    Args:
        weights: A path.

    Returns:
        The path.

    Raises:
        SpecError: If ``weights`` is neither ``"imagenet"``, ``None`` nor a path.
        StorageError: If the file does not exist or has another suffix.
    """
    if not isinstance(weights, (str, os.PathLike)):
        raise SpecError(
            f"weights must be 'imagenet', None or the path of a .weights.h5/.h5 file, "
            f"got {weights!r}"
        )
    path = pathlib.Path(weights)
    if not str(path).endswith(WEIGHT_SUFFIXES):
        raise StorageError(
            f"weights file {str(path)!r} must end in .weights.h5 or .h5 (or pass "
            f"weights='imagenet' or weights=None)"
        )
    if not path.is_file():
        raise StorageError(f"weights file {str(path)!r} does not exist")
    return path


def load_backbone_weights(
    model: keras.Model, path: str | os.PathLike, *, entry: BackboneEntry | None = None
) -> None:
    """Load a ``.weights.h5``/``.h5`` file into ``model``, or raise a clear error.

    Args:
        model: The model (a backbone or a whole classifier).
        path: The weights file.
        entry: The backbone the model is built from (named in the error).

    Raises:
        StorageError: If the file does not match the model's architecture.
    """
    try:
        with quiet_weight_loading():
            model.load_weights(str(path))
    except Exception as exc:
        what = f"backbone {entry.name!r}" if entry is not None else f"model {model.name!r}"
        raise StorageError(
            f"weights file {str(path)!r} does not match the architecture of {what} "
            f"({model.name}, {len(model.weights)} weight tensors): "
            f"{_first_line(exc)}"
        ) from exc


@contextlib.contextmanager
def quiet_weight_loading():
    """Silence Keras' warnings about its internal ``_operations_by_depth`` containers.

    Loading a ``.weights.h5`` file into a functional model makes Keras warn
    about these bookkeeping containers although every layer is loaded; the
    warnings name no layer of the model and are dropped.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Skipping nested container at '.*_operations_by_depth"
        )
        yield


def save_backbone_weights(model: keras.Model, path: str | os.PathLike) -> pathlib.Path:
    """Save the weights of the backbone inside ``model`` (or of ``model`` itself).

    The file is what ``build_classifier(..., weights=path)`` and
    ``feature_extractor(..., weights=path)`` load: pretrain a classifier on one
    task, save its backbone, and start another task from it.

    Args:
        model: A classifier or feature extractor built by keras_cnnkit, or a
            keras.applications backbone.
        path: Destination, ending in ``.weights.h5``.

    Returns:
        The written path.

    Raises:
        StorageError: If ``path`` does not end in ``.weights.h5``.
        SpecError: If ``model`` contains no backbone.
    """
    from keras_cnnkit.backbones.stages import backbone_model

    path = pathlib.Path(path)
    if not str(path).endswith(".weights.h5"):
        raise StorageError(f"backbone weights path {str(path)!r} must end in .weights.h5")
    path.parent.mkdir(parents=True, exist_ok=True)
    backbone_model(model).save_weights(str(path))
    return path


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:500]


def _translate(entry: BackboneEntry, exc: Exception, weights) -> Exception:
    text = str(exc)
    match = _URL.search(text)
    if weights == "imagenet" and (match or isinstance(exc, OSError)):
        url = match.group(1) if match else "the ImageNet weights"
        fname = url.rsplit("/", 1)[-1]
        cache = keras_cache_dir()
        return StorageError(
            f"could not download the ImageNet weights of backbone {entry.name!r} "
            f"({url}): {text.split(' -- ')[-1][:200]}. Without network access, copy the "
            f"file to {cache / fname} (the Keras cache, under $KERAS_HOME), or pass a "
            f"local file: weights='/path/to/{fname}' (a .h5 or .weights.h5 file), or use "
            f"weights=None for random initialization"
        )
    if isinstance(exc, (ValueError, TypeError)):
        return SpecError(f"cannot build backbone {entry.name!r}: {_first_line(exc)}")
    return StorageError(f"cannot build backbone {entry.name!r}: {_first_line(exc)}")
