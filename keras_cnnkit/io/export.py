"""Serving artifacts: a TensorFlow SavedModel taking raw or encoded images, and TFLite."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import keras

from keras_cnnkit.errors import SpecError, StorageError
from keras_cnnkit.io import _files
from keras_cnnkit.io.metadata import ModelMetadata, build_metadata

if TYPE_CHECKING:  # pragma: no cover
    from keras_cnnkit.io.gcs import GCSOptions

#: Export formats and their aliases.
FORMATS = {"savedmodel": "savedmodel", "tf_saved_model": "savedmodel", "tflite": "tflite"}

#: Signature taking a batch of raw ``uint8`` images (``[batch, height, width, channels]``).
IMAGES_SIGNATURE = "serving_default"
#: Signature taking a batch of encoded JPEG/PNG/GIF/BMP images (``tf.string``).
BYTES_SIGNATURE = "serving_bytes"
#: Where the metadata goes inside an exported SavedModel folder.
METADATA_FILE = "assets.extra/keras_cnnkit.json"


def export(
    model: keras.Model,
    path: str | os.PathLike,
    format: str = "savedmodel",
    *,
    metadata: ModelMetadata | Mapping | None = None,
    image_size: Sequence[int] | None = None,
    overwrite: bool = False,
    gcs: GCSOptions | None = None,
) -> ModelMetadata:
    """Export a model as a serving artifact (TF Serving, Vertex AI, TFLite).

    ``format="savedmodel"`` writes a TensorFlow SavedModel folder with two signatures:

    * ``serving_default``: ``images``, a ``uint8`` tensor ``[batch, height, width,
      channels]`` of raw pixels;
    * ``serving_bytes``: ``image_bytes``, a ``string`` tensor ``[batch]`` of encoded
      JPEG/PNG images, decoded and resized to the model's input size inside the graph.

    Both return ``scores`` (the model output) and, when ``class_names`` are given in
    ``metadata``, ``class_index`` and ``class_name`` of the best score. The model is
    expected to carry its preprocessing (a :class:`~keras_cnnkit.layers.Normalize`
    layer): the artifact feeds it raw pixels. The metadata is written to
    ``assets.extra/keras_cnnkit.json`` inside the folder. The folder is built under a
    temporary name beside ``path`` and renamed into place when complete.

    ``format="tflite"`` writes a single ``.tflite`` file with the raw-image signature.

    Args:
        model: A model with one image input ``[batch, height, width, channels]``.
        path: Destination folder (SavedModel) or ``.tflite`` file: local or ``gs://``
            (uploaded file by file with a manifest written last).
        format: ``"savedmodel"`` (alias ``"tf_saved_model"``) or ``"tflite"``.
        metadata: As in :func:`keras_cnnkit.io.save`; ``class_names`` adds the
            ``class_index``/``class_name`` outputs.
        image_size: ``(height, width)`` the encoded images are resized to; required
            only when the model's input size is not fixed.
        overwrite: Replace an existing folder, file or ``gs://`` prefix.
        gcs: Client, credentials, timeouts and retry deadline for ``gs://`` paths.

    Returns:
        The metadata written with the artifact.

    Raises:
        SpecError: If the model does not have exactly one 4-D image input, or its
            input size is unknown and ``image_size`` is not given.
        StorageError: If the format is unknown, the destination exists and
            ``overwrite`` is false, or the export fails.

    Example:
        >>> export(model, "serving/1", metadata={"class_names": ["cat", "dog"]})  # doctest: +SKIP
        >>> import tensorflow as tf  # doctest: +SKIP
        >>> tf.saved_model.load("serving/1").signatures["serving_bytes"]  # doctest: +SKIP
    """
    fmt = FORMATS.get(str(format).lower())
    if fmt is None:
        raise StorageError(f"unknown export format {format!r}; expected one of {sorted(FORMATS)}")
    if fmt == "tflite" and not str(path).endswith(".tflite"):
        raise StorageError(f"a TFLite export path must end with '.tflite', got {str(path)!r}")
    size = _image_size(model, image_size)
    meta = build_metadata(model, metadata, fmt)

    if _files.is_gcs_uri(path):
        from keras_cnnkit.io import gcs as gcs_mod

        if not overwrite:  # fail before the export work, not after
            gcs_mod.ensure_absent(str(path), folder=fmt == "savedmodel", gcs=gcs)
        with _files.scratch_dir() as scratch:
            local = scratch / ("model.tflite" if fmt == "tflite" else "export")
            export(model, local, fmt, metadata=meta, image_size=image_size, overwrite=True)
            gcs_mod.upload(local, str(path), overwrite=overwrite, progress=False, gcs=gcs)
        return meta

    path = pathlib.Path(path)
    _files.check_writable(path, overwrite)
    if fmt == "savedmodel":
        tmp = _files.temp_sibling(path)
        try:
            _write_saved_model(model, tmp, size, meta, with_bytes=True)
            (tmp / METADATA_FILE).parent.mkdir(exist_ok=True)
            meta.write(tmp / METADATA_FILE)
            _files.replace_dir(tmp, path)
        finally:
            _files.remove(tmp)
    else:
        with _files.scratch_dir() as scratch:
            saved = scratch / "savedmodel"
            _write_saved_model(model, saved, size, meta, with_bytes=False)
            data = _to_tflite(saved, path)
        with _files.atomic_path(path) as tmp:
            tmp.write_bytes(data)
        meta.sha256 = _files.sha256_file(path)
        meta.size = path.stat().st_size
    return meta


def _image_size(model: keras.Model, image_size) -> tuple[int | None, int | None, int]:
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        shapes = [tuple(t.shape) for t in inputs]
        raise SpecError(
            f"export needs a model with one image input [batch, height, width, channels]; "
            f"model {model.name!r} has inputs {shapes}"
        )
    _, height, width, channels = inputs[0].shape
    if channels is None:
        raise SpecError(f"model {model.name!r} input has an unknown number of channels")
    if image_size is not None:
        if len(image_size) != 2 or any(int(s) < 1 for s in image_size):
            raise SpecError(f"image_size must be (height, width), got {image_size!r}")
        given = (int(image_size[0]), int(image_size[1]))
        if (height, width) != (None, None) and (height, width) != given:
            raise SpecError(
                f"image_size {given} does not match model {model.name!r} input size "
                f"{(height, width)}"
            )
        height, width = given
    return height, width, int(channels)


def _write_saved_model(model, path: pathlib.Path, size, meta: ModelMetadata, with_bytes: bool):
    import tensorflow as tf

    height, width, channels = size
    input_dtype = keras.backend.standardize_dtype(model.inputs[0].dtype)
    class_names = meta.class_names

    def predict(images):
        x = images if input_dtype == "uint8" else tf.cast(images, input_dtype)
        y = model(x, training=False)
        if isinstance(y, Mapping):
            return dict(y)
        if isinstance(y, (list, tuple)):
            return {name: t for name, t in zip(model.output_names, y)}
        out = {"scores": y}
        if class_names:
            index = tf.argmax(y, axis=-1, output_type=tf.int32)
            out["class_index"] = index
            out["class_name"] = tf.gather(tf.constant(class_names), index)
        return out

    @tf.function(
        input_signature=[tf.TensorSpec([None, height, width, channels], tf.uint8, name="images")]
    )
    def serve_images(images):
        return predict(images)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(IMAGES_SIGNATURE, serve_images)
    if with_bytes:
        if height is None or width is None:
            raise SpecError(
                f"model {model.name!r} takes images of any size: pass image_size=(height, "
                "width) to choose the size encoded images are resized to"
            )

        def decode(data):
            image = tf.io.decode_image(data, channels=channels, expand_animations=False)
            image.set_shape([None, None, channels])
            same = tf.logical_and(tf.shape(image)[0] == height, tf.shape(image)[1] == width)
            return tf.cond(
                same,
                lambda: image,
                lambda: tf.cast(
                    tf.clip_by_value(
                        tf.round(tf.image.resize(image, (height, width), antialias=True)), 0, 255
                    ),
                    tf.uint8,
                ),
            )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve_bytes(image_bytes):
            images = tf.map_fn(
                decode,
                image_bytes,
                fn_output_signature=tf.TensorSpec([height, width, channels], tf.uint8),
            )
            return predict(images)

        archive.add_endpoint(BYTES_SIGNATURE, serve_bytes)
    try:
        archive.write_out(str(path), verbose=False)
    except (ValueError, TypeError) as exc:
        raise StorageError(f"cannot export model {model.name!r} to {str(path)!r}: {exc}") from exc


def _to_tflite(saved: pathlib.Path, path: pathlib.Path) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved), signature_keys=[IMAGES_SIGNATURE]
    )
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises ConverterError and plain exceptions
        raise StorageError(f"cannot convert the model to TFLite for {str(path)!r}: {exc}") from exc
