"""Metadata saved with every model: classes, input spec, preprocessing, versions, checksum."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from keras_cnnkit._version import __version__
from keras_cnnkit.errors import DataError, StorageError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "SIDECAR_SUFFIX",
    "ModelMetadata",
    "build_metadata",
    "preprocessing_from_model",
    "sidecar_path",
    "tensor_specs",
    "versions",
]

#: Identifies a keras_cnnkit metadata document; bumped only on incompatible changes.
FORMAT = "keras_cnnkit.model-metadata"
FORMAT_VERSION = 1

#: Suffix of the metadata file written beside a saved model (``model.keras.json``).
SIDECAR_SUFFIX = ".json"

_USER_FIELDS = ("class_names", "preprocessing", "input_preprocessing", "training", "extra")


@dataclasses.dataclass
class ModelMetadata:
    """What keras_cnnkit records about a saved or exported model.

    Saved as JSON beside the model (``model.keras.json``) and, for ``.keras`` files,
    also inside the archive, so a copied model still describes itself.

    Attributes:
        class_names: Names of the output classes, in output order (or ``None``).
        input_spec: One entry per model input: ``name``, ``shape`` (``None`` for any
            size) and ``dtype``.
        output_spec: One entry per model output, same keys.
        preprocessing: How raw images become model input. Filled from the model's
            :class:`~keras_cnnkit.layers.Normalize` layers unless given.
        input_preprocessing: How image files become the model's input pixels: the
            ``image_size``, ``color_mode``, ``resize_mode``, ``interpolation``,
            ``antialias`` and ``center_crop`` of :class:`keras_cnnkit.data.DataConfig`
            (``None``: the library's defaults at the model's input size).
        training: Free-form training information (epochs, optimizer, dataset, scores).
        extra: Any other JSON-serializable information.
        versions: keras_cnnkit, Keras, TensorFlow, NumPy and Python versions at save time.
        sha256: Hex sha256 of the saved file (``None`` for folders, whose files are
            listed with their own checksums).
        size: Size of the saved file in bytes.
        format: ``"keras"``, ``"weights"``, ``"savedmodel"`` or ``"tflite"``.
        created: UTC time of saving, ISO 8601.
        replaces: Only while a save replaces an older file: the older file's metadata
            (with its ``sha256``), so that whichever file a kill leaves in place still
            matches its metadata. ``None`` once the save is complete.

    Example:
        >>> meta = ModelMetadata(class_names=["cat", "dog"])
        >>> ModelMetadata.from_dict(meta.to_dict()).class_names
        ['cat', 'dog']
    """

    class_names: list[str] | None = None
    input_spec: list[dict] = dataclasses.field(default_factory=list)
    output_spec: list[dict] = dataclasses.field(default_factory=list)
    preprocessing: Any = None
    training: dict = dataclasses.field(default_factory=dict)
    extra: dict = dataclasses.field(default_factory=dict)
    versions: dict = dataclasses.field(default_factory=dict)
    sha256: str | None = None
    size: int | None = None
    format: str | None = None
    created: str | None = None
    replaces: dict | None = None
    input_preprocessing: dict | None = None

    def to_dict(self) -> dict:
        """The metadata as a JSON-serializable dict (with a format marker).

        Returns:
            A new dict.
        """
        data = {"format_name": FORMAT, "format_version": FORMAT_VERSION}
        data.update(dataclasses.asdict(self))
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> ModelMetadata:
        """Rebuild metadata from :meth:`to_dict` output; unknown keys go to ``extra``.

        Args:
            data: A mapping as written by :meth:`to_dict`.

        Returns:
            The metadata.

        Raises:
            StorageError: If ``data`` is not a keras_cnnkit metadata document or was
                written by a newer, incompatible version.
        """
        if not isinstance(data, Mapping) or data.get("format_name") != FORMAT:
            raise StorageError("not a keras_cnnkit model metadata document")
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise StorageError(
                f"model metadata format version {data['format_version']} is newer than this "
                f"keras_cnnkit ({__version__}) understands; upgrade keras-cnnkit"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names and not k.startswith("format_")}
        meta = cls(**known)
        meta.extra = {**unknown, **(meta.extra or {})}
        return meta

    def to_json(self) -> str:
        """The metadata as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def write(self, path: str | os.PathLike) -> None:
        """Write the metadata as JSON to ``path``, atomically."""
        from keras_cnnkit.io import _files

        _files.write_text(path, self.to_json() + "\n")

    @classmethod
    def read(cls, path: str | os.PathLike) -> ModelMetadata:
        """Read metadata written by :meth:`write`.

        Args:
            path: The JSON file.

        Returns:
            The metadata.

        Raises:
            StorageError: If the file is missing, not JSON, or not keras_cnnkit metadata.
        """
        try:
            data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StorageError(f"metadata file {str(path)!r} does not exist") from None
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read metadata file {str(path)!r}: {exc}") from None
        try:
            return cls.from_dict(data)
        except StorageError as exc:
            raise StorageError(f"{str(path)!r}: {exc}") from None


def sidecar_path(path: str | os.PathLike) -> pathlib.Path:
    """The metadata file that goes with a saved model file (``model.keras.json``)."""
    path = pathlib.Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def versions() -> dict:
    """Versions of the libraries a saved model depends on."""
    import numpy as np

    found = {
        "keras_cnnkit": __version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": keras.backend.backend(),
    }
    backend = keras.backend.backend()
    if backend in ("tensorflow", "jax", "torch"):
        import importlib

        found[backend] = importlib.import_module(backend).__version__
    return found


def tensor_specs(tensors: Sequence) -> list[dict]:
    """Name, shape and dtype of Keras symbolic tensors."""
    specs = []
    for tensor in tensors:
        name = getattr(tensor, "name", None)
        specs.append(
            {
                "name": name.split(":")[0] if isinstance(name, str) else None,
                "shape": [None if d is None else int(d) for d in tensor.shape],
                "dtype": str(keras.backend.standardize_dtype(tensor.dtype)),
            }
        )
    return specs


def preprocessing_from_model(model: keras.Model) -> list[dict] | None:
    """Configs of the :class:`~keras_cnnkit.layers.Normalize` layers in ``model``."""
    from keras_cnnkit.layers import Normalize

    found = []

    def visit(layer):
        if isinstance(layer, Normalize):
            config = {
                k: layer.get_config()[k]
                for k in ("scale", "offset", "mean", "std", "channel_order")
            }
            found.append({"layer": layer.name, "type": "Normalize", **config})
        for sub in getattr(layer, "layers", None) or ():
            visit(sub)

    for layer in model.layers:
        visit(layer)
    return found or None


def build_metadata(
    model: keras.Model, metadata: ModelMetadata | Mapping | None, fmt: str
) -> ModelMetadata:
    """Merge user metadata with what can be read from ``model``.

    Args:
        model: The model being saved.
        metadata: ``None``, a :class:`ModelMetadata` or a mapping with any of
            ``class_names``, ``preprocessing``, ``training``, ``extra``; other keys go
            to ``extra``.
        fmt: The artifact format.

    Returns:
        A new :class:`ModelMetadata` (checksum not yet set).

    Raises:
        DataError: If a value is not JSON-serializable, or ``class_names`` does not
            match the number of model outputs.
    """
    if metadata is None:
        user: dict = {}
    elif isinstance(metadata, ModelMetadata):
        user = {k: getattr(metadata, k) for k in _USER_FIELDS}
    elif isinstance(metadata, Mapping):
        user = {k: v for k, v in metadata.items() if k in _USER_FIELDS}
        others = {k: v for k, v in metadata.items() if k not in _USER_FIELDS}
        if others:
            user["extra"] = {**others, **(user.get("extra") or {})}
    else:
        raise DataError(
            f"metadata must be a mapping or ModelMetadata, got {type(metadata).__name__}"
        )
    for key, value in user.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise DataError(f"metadata[{key!r}] is not JSON-serializable: {exc}") from None

    class_names = user.get("class_names")
    if class_names is not None:
        if isinstance(class_names, str) or not isinstance(class_names, Sequence):
            raise DataError(f"metadata['class_names'] must be a list of names, got {class_names!r}")
        class_names = [str(c) for c in class_names]
        outputs = getattr(model, "outputs", None) or []
        if len(outputs) == 1 and outputs[0].shape[-1] is not None:
            units = int(outputs[0].shape[-1])
            if units != len(class_names):
                raise DataError(
                    f"metadata['class_names'] has {len(class_names)} names but the model "
                    f"outputs {units} scores"
                )

    training = dict(user.get("training") or {})
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and "optimizer" not in training:
        training["optimizer"] = type(optimizer).__name__
        if getattr(optimizer, "built", False):
            training.setdefault("iterations", int(keras.ops.convert_to_numpy(optimizer.iterations)))

    preprocessing = user.get("preprocessing")
    if preprocessing is None:
        preprocessing = preprocessing_from_model(model)
    input_preprocessing = user.get("input_preprocessing")
    if input_preprocessing is not None:
        from keras_cnnkit.data import data_config

        if not isinstance(input_preprocessing, Mapping):
            raise DataError(
                "metadata['input_preprocessing'] must be a mapping of DataConfig settings, "
                f"got {input_preprocessing!r}"
            )
        input_preprocessing = data_config(
            model, {"input_preprocessing": dict(input_preprocessing)}
        ).input_preprocessing()

    return ModelMetadata(
        class_names=class_names,
        input_spec=tensor_specs(getattr(model, "inputs", None) or []),
        output_spec=tensor_specs(getattr(model, "outputs", None) or []),
        preprocessing=preprocessing,
        input_preprocessing=input_preprocessing,
        training=training,
        extra=dict(user.get("extra") or {}),
        versions=versions(),
        format=fmt,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
