"""Atomic, checksummed ``.keras`` and weights files with their metadata."""

from __future__ import annotations

import json
import os
import pathlib
import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import keras

import keras_cnnkit.layers  # noqa: F401  (registers every keras_cnnkit layer with Keras)
from keras_cnnkit.errors import IntegrityError, StorageError
from keras_cnnkit.io import _files, _portable
from keras_cnnkit.io.metadata import ModelMetadata, build_metadata, sidecar_path

__all__ = [
    "ARCHIVE_ENTRY",
    "KERAS_SUFFIX",
    "WEIGHTS_SUFFIX",
    "LoadedModel",
    "load",
    "load_weights",
    "save",
    "save_weights",
]

if TYPE_CHECKING:  # pragma: no cover
    from keras_cnnkit.io.gcs import GCSOptions

#: Name of the metadata entry written inside a ``.keras`` archive.
ARCHIVE_ENTRY = "keras_cnnkit.json"

KERAS_SUFFIX = ".keras"
WEIGHTS_SUFFIX = ".weights.h5"


class LoadedModel(NamedTuple):
    """A model loaded by :func:`load`, with its metadata.

    Unpacks as ``model, metadata = load(path)``.

    Attributes:
        model: The Keras model.
        metadata: Its :class:`~keras_cnnkit.io.ModelMetadata` (``None`` only for a
            file saved without keras_cnnkit and loaded with ``verify=False``).
    """

    model: keras.Model
    metadata: ModelMetadata | None


def save(
    model: keras.Model,
    path: str | os.PathLike,
    metadata: ModelMetadata | Mapping | None = None,
    *,
    overwrite: bool = False,
    gcs: GCSOptions | None = None,
) -> ModelMetadata:
    """Save a model to a ``.keras`` file atomically, with its metadata.

    The model is written to a temporary file in the same folder, then renamed over
    ``path``, so a crash never leaves a half-written file in place of a good one.
    Metadata (class names, input spec, preprocessing, training information, library
    versions and the file's sha256) is written inside the archive and beside it as
    ``<path>.json``, which :func:`load` checks.

    Args:
        model: The model to save.
        path: Destination ending in ``.keras``: a local path or a ``gs://`` URI (the
            file is staged locally, then uploaded with :func:`keras_cnnkit.io.gcs.upload`;
            the metadata object is uploaded last).
        metadata: A :class:`ModelMetadata` or a mapping with ``class_names``,
            ``preprocessing``, ``training`` and/or ``extra``; other keys go to ``extra``.
            Preprocessing defaults to the model's ``Normalize`` layers.
        overwrite: Replace an existing file or object.
        gcs: Client, credentials, timeouts and retry deadline for ``gs://`` paths.

    Returns:
        The metadata written, including ``sha256``.

    Raises:
        StorageError: If ``path`` does not end in ``.keras``, exists and ``overwrite``
            is false, or cannot be written.
        DataError: If the metadata is not JSON-serializable or its ``class_names`` do
            not match the model's outputs.

    Example:
        >>> meta = save(model, "model.keras", {"class_names": ["cat", "dog"]})  # doctest: +SKIP
        >>> meta.sha256[:8]  # doctest: +SKIP
        '3f2a9c1e'
    """
    _check_suffix(path, KERAS_SUFFIX)
    if _files.is_gcs_uri(path):
        return _save_to_gcs(save, model, path, metadata, overwrite, gcs)
    path = pathlib.Path(path)
    _files.check_writable(path, overwrite)
    meta = build_metadata(model, metadata, "keras")
    with _files.atomic_pair(path, sidecar_path(path), KERAS_SUFFIX) as pending:
        tmp = pending.tmp
        try:
            model.save(tmp)
        except (ValueError, TypeError, NotImplementedError) as exc:
            raise StorageError(f"cannot save model {model.name!r} to {str(path)!r}: {exc}") from exc
        _portable.make_portable(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(ARCHIVE_ENTRY, meta.to_json())
        pending.metadata = _checksummed(meta, tmp)
    return meta


def load(
    path: str | os.PathLike,
    *,
    verify: bool = True,
    safe_mode: bool = True,
    compile: bool = True,
    gcs: GCSOptions | None = None,
) -> LoadedModel:
    """Load a model saved by :func:`save`, checking its sha256 first.

    Every keras_cnnkit layer resolves without ``custom_objects``. Keras' safe mode is
    on by default: a model that would run arbitrary Python code when loaded (a
    ``Lambda`` layer holding a Python function) is refused.

    Args:
        path: A ``.keras`` file or ``gs://`` URI.
        verify: Check the file against the sha256 in ``<path>.json``. With
            ``verify=False`` a ``.keras`` file saved without keras_cnnkit loads too.
        safe_mode: Refuse unsafe content. Turn off only for files you trust.
        compile: Restore the training configuration (optimizer, loss, metrics).
        gcs: Client, credentials, timeouts and retry deadline for ``gs://`` paths.

    Returns:
        ``(model, metadata)`` as a :class:`LoadedModel`.

    Raises:
        StorageError: If the file or its metadata is missing or unreadable, or the
            model holds unsafe content and ``safe_mode`` is true.
        IntegrityError: If the file does not match its recorded sha256.

    Example:
        >>> model, meta = load("model.keras")  # doctest: +SKIP
        >>> meta.class_names  # doctest: +SKIP
        ['cat', 'dog']
    """
    _check_suffix(path, KERAS_SUFFIX)
    if _files.is_gcs_uri(path):
        with _files.scratch_dir() as scratch:
            local = _download_for_load(path, scratch, verify, gcs)
            return load(local, verify=verify, safe_mode=safe_mode, compile=compile)
    path = pathlib.Path(path)
    meta = _read_checked_metadata(path, verify)
    if meta is None:
        meta = _archive_metadata(path)
    _register_all()
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)
    except ValueError as exc:
        if "safe_mode" in str(exc):
            raise StorageError(
                f"{str(path)!r} holds unsafe content (such as a Lambda layer with Python "
                "code), refused in safe mode; if you trust its source, load it with "
                "safe_mode=False"
            ) from exc
        raise StorageError(f"cannot load model {str(path)!r}: {exc}") from exc
    except (TypeError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise StorageError(f"cannot load model {str(path)!r}: {exc}") from exc
    return LoadedModel(model, meta)


def save_weights(
    model: keras.Model,
    path: str | os.PathLike,
    metadata: ModelMetadata | Mapping | None = None,
    *,
    overwrite: bool = False,
    gcs: GCSOptions | None = None,
) -> ModelMetadata:
    """Save only the weights of a model, atomically, with a checksummed metadata file.

    Args:
        model: The model whose weights to save.
        path: Destination ending in ``.weights.h5`` (local or ``gs://``).
        metadata: As in :func:`save`.
        overwrite: Replace an existing file or object.
        gcs: Client, credentials, timeouts and retry deadline for ``gs://`` paths.

    Returns:
        The metadata written beside the file (``<path>.json``).

    Raises:
        StorageError: If the path is wrong, exists and ``overwrite`` is false, or
            cannot be written.

    Example:
        >>> save_weights(model, "ckpt.weights.h5", overwrite=True)  # doctest: +SKIP
    """
    _check_suffix(path, WEIGHTS_SUFFIX)
    if _files.is_gcs_uri(path):
        return _save_to_gcs(save_weights, model, path, metadata, overwrite, gcs)
    path = pathlib.Path(path)
    _files.check_writable(path, overwrite)
    meta = build_metadata(model, metadata, "weights")
    with _files.atomic_pair(path, sidecar_path(path), WEIGHTS_SUFFIX) as pending:
        try:
            model.save_weights(pending.tmp)
        except (ValueError, TypeError) as exc:
            raise StorageError(
                f"cannot save weights of {model.name!r} to {str(path)!r}: {exc}"
            ) from exc
        pending.metadata = _checksummed(meta, pending.tmp)
    return meta


def load_weights(
    model: keras.Model,
    path: str | os.PathLike,
    *,
    verify: bool = True,
    gcs: GCSOptions | None = None,
) -> ModelMetadata | None:
    """Load weights saved by :func:`save_weights` into ``model``, checking the sha256.

    Args:
        model: A model with the same architecture as the one saved.
        path: A ``.weights.h5`` file or ``gs://`` URI.
        verify: Check the file against the sha256 in ``<path>.json``.
        gcs: Client, credentials, timeouts and retry deadline for ``gs://`` paths.

    Returns:
        The metadata saved with the weights (``None`` if absent and ``verify=False``).

    Raises:
        StorageError: If the file or its metadata is missing, or the weights do not fit
            ``model``.
        IntegrityError: If the file does not match its recorded sha256.

    Example:
        >>> load_weights(model, "ckpt.weights.h5")  # doctest: +SKIP
    """
    _check_suffix(path, WEIGHTS_SUFFIX)
    if _files.is_gcs_uri(path):
        with _files.scratch_dir() as scratch:
            local = _download_for_load(path, scratch, verify, gcs)
            return load_weights(model, local, verify=verify)
    path = pathlib.Path(path)
    meta = _read_checked_metadata(path, verify)
    try:
        model.load_weights(path)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise StorageError(
            f"cannot load weights {str(path)!r} into model {model.name!r}: {exc}"
        ) from exc
    return meta


def _register_all() -> None:
    """Import every keras_cnnkit package, so each class a saved model names is registered."""
    import keras_cnnkit

    keras_cnnkit._load_all()


def _check_suffix(path, suffix: str) -> None:
    if not str(path).endswith(suffix):
        raise StorageError(f"path must end with {suffix!r}, got {str(path)!r}")


def _checksummed(meta: ModelMetadata, written: pathlib.Path) -> dict:
    """Record the checksum and size of ``written`` in ``meta``; the metadata as a dict."""
    meta.sha256 = _files.sha256_file(written)
    meta.size = written.stat().st_size
    return meta.to_dict()


def _read_checked_metadata(path: pathlib.Path, verify: bool) -> ModelMetadata | None:
    if not path.is_file():
        raise StorageError(f"model file {str(path)!r} does not exist")
    side = sidecar_path(path)
    if not side.is_file():
        if verify:
            raise StorageError(
                f"no metadata file {str(side)!r} beside {str(path)!r}, so its checksum cannot "
                "be verified (it was not saved by keras_cnnkit.io); pass verify=False to load "
                "it anyway"
            )
        return None
    meta = ModelMetadata.read(side)
    if verify or meta.replaces:
        actual = _files.sha256_file(path)
        if meta.sha256 == actual:
            meta.replaces = None
        elif meta.replaces and meta.replaces.get("sha256") == actual:
            # A save that replaces this file was interrupted before its rename.
            return ModelMetadata.from_dict(meta.replaces)
        elif verify:
            raise IntegrityError(
                f"{str(path)!r} is corrupted or was replaced: its sha256 is {actual}, but "
                f"{side.name!r} records {meta.sha256}"
            )
    return meta


def _archive_metadata(path: pathlib.Path) -> ModelMetadata | None:
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read(ARCHIVE_ENTRY))
        return ModelMetadata.from_dict(data)
    except (KeyError, OSError, ValueError, zipfile.BadZipFile, StorageError):
        return None


def _save_to_gcs(save_fn, model, uri: str, metadata, overwrite: bool, gcs) -> ModelMetadata:
    from keras_cnnkit.io import gcs as gcs_mod

    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if not overwrite:  # fail before the save work, not after
        gcs_mod.ensure_absent(uri, gcs=gcs)
        gcs_mod.ensure_absent(uri + ".json", gcs=gcs)
    with _files.scratch_dir() as scratch:
        local = scratch / name
        meta = save_fn(model, local, metadata, overwrite=True)
        # The file and its metadata go up as one unit (see keras_cnnkit.io.upload).
        gcs_mod.upload(local, uri, overwrite=overwrite, progress=False, gcs=gcs)
    return meta


def _download_for_load(uri: str, scratch: pathlib.Path, verify: bool, gcs) -> pathlib.Path:
    from keras_cnnkit.io import gcs as gcs_mod

    name = uri.rstrip("/").rsplit("/", 1)[-1]
    local = scratch / name
    gcs_mod.download(uri, local, progress=False, gcs=gcs)  # brings <uri>.json along
    if verify and not sidecar_path(local).is_file():
        raise StorageError(
            f"no metadata object {uri + '.json'!r} beside {uri!r}, so its checksum cannot be "
            "verified (it was not saved by keras_cnnkit.io, or its upload did not finish); "
            "pass verify=False to load it anyway"
        )
    return local
