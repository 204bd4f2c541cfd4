"""Serving artifacts: a TensorFlow SavedModel taking raw or encoded images, and TFLite."""

from __future__ import annotations

import contextlib
import itertools
import os
import pathlib
import re
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import keras

from keras_cnnkit.errors import CnnkitError, ConfigError, DataError, SpecError, StorageError
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
#: TFLite post-training quantizations: ``None`` (float32), ``"float16"`` (float16
#: weights) and ``"int8"`` (int8 weights and activations calibrated on a sample).
QUANTIZATIONS = (None, "float16", "int8")
#: Images of the representative sample used to calibrate int8 quantization.
CALIBRATION_SAMPLES = 100


def export(
    model: keras.Model,
    path: str | os.PathLike,
    format: str = "savedmodel",
    *,
    metadata: ModelMetadata | Mapping | None = None,
    image_size: Sequence[int] | None = None,
    overwrite: bool = False,
    gcs: GCSOptions | None = None,
    quantization: str | None = None,
    representative_data=None,
) -> ModelMetadata:
    """Export a model as a serving artifact (TF Serving, Vertex AI, TFLite).

    ``format="savedmodel"`` writes a TensorFlow SavedModel folder with two signatures:

    * ``serving_default``: ``images``, a ``uint8`` tensor ``[batch, height, width,
      channels]`` of raw pixels;
    * ``serving_bytes``: ``image_bytes``, a ``string`` tensor ``[batch]`` of encoded
      JPEG/PNG/BMP/GIF/WebP images, decoded and resized inside the graph by the same
      TensorFlow ops as :func:`keras_cnnkit.data.from_files` and ``cnnkit predict``,
      with the input preprocessing the model recorded (``metadata.input_preprocessing``:
      resize mode, interpolation, antialias), so a file gives the same pixels there.

    Both return ``scores`` (the model output) and, when ``class_names`` are given in
    ``metadata``, ``class_index`` and ``class_name`` of the best score. The model is
    expected to carry its preprocessing (a :class:`~keras_cnnkit.layers.Normalize`
    layer): the artifact feeds it raw pixels. The metadata is written to
    ``assets.extra/keras_cnnkit.json`` inside the folder. The folder is built under a
    temporary name beside ``path`` and renamed into place when complete.

    ``format="tflite"`` writes a single ``.tflite`` file with the raw-image signature.
    TFLite runs float32 graphs: a model computing in mixed ``bfloat16`` or
    ``float16`` is cast to float32 first (its weights are float32 already), so
    its scores match the Keras model's to the rounding of the mixed precision.
    ``quantization="float16"`` stores float16 weights (about half the size);
    ``quantization="int8"`` quantizes weights and activations to int8 (about a
    quarter), calibrated on ``representative_data``. Input (raw ``uint8``
    pixels) and scores (float32) keep their types. A SavedModel keeps the
    model's precision.

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
        quantization: TFLite only: ``None``, ``"float16"`` or ``"int8"``.
        representative_data: For ``"int8"``: raw images as the model takes them
            (0..255), as an array ``[n, height, width, channels]``, a
            ``tf.data.Dataset`` or any iterable of images or batches (of
            ``(images, labels)`` tuples too, e.g. a training pipeline); the
            first :data:`CALIBRATION_SAMPLES` images are used.

    Returns:
        The metadata written with the artifact.

    Raises:
        SpecError: If the model does not have exactly one 4-D image input, or its
            input size is unknown and ``image_size`` is not given.
        StorageError: If the format is unknown, the destination exists and
            ``overwrite`` is false, or the export fails (a failed TFLite
            conversion names the file holding the converter's log).
        ConfigError: On an unknown quantization, or one asked for a SavedModel.
        DataError: If the representative data is missing, empty or not images
            of the model's input shape.

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
    quantization = _check_quantization(fmt, quantization, representative_data)
    meta = build_metadata(model, metadata, fmt)

    if _files.is_gcs_uri(path):
        from keras_cnnkit.io import gcs as gcs_mod

        if not overwrite:  # fail before the export work, not after
            gcs_mod.ensure_absent(str(path), folder=fmt == "savedmodel", gcs=gcs)
        with _files.scratch_dir() as scratch:
            local = scratch / ("model.tflite" if fmt == "tflite" else "export")
            export(
                model,
                local,
                fmt,
                metadata=meta,
                image_size=image_size,
                overwrite=True,
                quantization=quantization,
                representative_data=representative_data,
            )
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
        sample = None
        if quantization == "int8":
            sample = calibration_sample(representative_data, size)
        with _files.scratch_dir() as scratch:
            saved = scratch / "savedmodel"
            _write_saved_model(float32_model(model), saved, size, meta, with_bytes=False)
            data = _to_tflite(saved, path, quantization=quantization, sample=sample)
        if quantization:
            meta.extra = {**meta.extra, "quantization": quantization}
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

        import dataclasses

        from keras_cnnkit.data import DEFAULT_MAX_PIXELS, data_config, decode_and_resize

        # The pipelines' own decoder, with the input preprocessing the model recorded:
        # an encoded image gives the pixels from_files and cnnkit predict give.
        config = dataclasses.replace(
            data_config(model, meta),
            image_size=(height, width),
            color_mode="grayscale" if channels == 1 else "rgb",
        )

        def decode(data):
            image = decode_and_resize(data, config, max_pixels=DEFAULT_MAX_PIXELS)
            return tf.ensure_shape(image, [height, width, channels])

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


def float32_model(model: keras.Model) -> keras.Model:
    """``model`` itself when every layer computes in float32, else a float32 copy.

    Args:
        model: A Keras model (mixed ``bfloat16``/``float16`` or float32).

    Returns:
        A model with the same weights whose layers compute in float32.

    Example:
        >>> from keras_cnnkit import conv_stack
        >>> m = conv_stack({"stages": [4]}, input_shape=(8, 8, 3), dtype="mixed_bfloat16")
        >>> float32_model(m).get_layer("stage1_conv1").compute_dtype
        'float32'
    """
    from keras_cnnkit.models.precision import cast_precision, compute_dtypes

    if compute_dtypes(model) <= {"float32"}:
        return model
    return cast_precision(model, "float32")


def _check_quantization(fmt: str, quantization, representative_data) -> str | None:
    if quantization in ("none", "float32"):
        quantization = None
    if quantization not in QUANTIZATIONS:
        raise ConfigError(
            f"unknown quantization {quantization!r}; expected one of {list(QUANTIZATIONS)}"
        )
    if quantization is not None and fmt != "tflite":
        raise ConfigError(f"quantization={quantization!r} applies to TFLite exports only")
    if quantization == "int8" and representative_data is None:
        raise DataError(
            "quantization='int8' needs representative_data: images as the model takes "
            "them (an array, a tf.data.Dataset or an iterable of batches) to calibrate on"
        )
    return quantization


def calibration_sample(data, size, limit: int = CALIBRATION_SAMPLES) -> list:
    """Collect up to ``limit`` images of the model's input shape from ``data``.

    Args:
        data: An array ``[n, height, width, channels]``, a ``tf.data.Dataset`` or
            an iterable; elements are images or batches, alone or first in a
            tuple (``(images, labels)``).
        size: ``(height, width, channels)`` of the model input (``None`` sides
            accept any size).
        limit: Most images to collect.

    Returns:
        ``uint8`` arrays ``[1, height, width, channels]``.

    Raises:
        DataError: If an element is not an image of that shape with values in
            0..255 (naming the element), or there is none.

    Example:
        >>> import numpy as np
        >>> len(calibration_sample(np.zeros((3, 8, 8, 1), "uint8"), (8, 8, 1)))
        3
    """
    import numpy as np

    height, width, channels = size
    if hasattr(data, "as_numpy_iterator"):
        data = data.as_numpy_iterator()
    elif isinstance(data, np.ndarray):
        if data.ndim != 4:
            raise DataError(
                f"representative_data must be images [n, height, width, channels], got an "
                f"array of shape {data.shape}"
            )
        data = [data]
    images: list = []
    iterator = iter(data)
    for i in itertools.count():
        try:
            element = next(iterator)
        except StopIteration:
            break
        except CnnkitError:  # already names the input at fault (e.g. a file)
            raise
        except Exception as exc:  # a pipeline failing mid-way: name where
            raise DataError(
                f"representative_data failed at element {i}: {type(exc).__name__}: {str(exc)[:300]}"
            ) from exc
        if isinstance(element, (tuple, list)):
            element = element[0] if element else None
        try:
            batch = np.asarray(element)
        except Exception as exc:  # an element numpy cannot read
            raise DataError(f"representative_data element {i} is not an image: {exc}") from exc
        if batch.ndim == 3:
            batch = batch[None]
        expected = (height, width, channels)
        if (
            batch.ndim != 4
            or batch.shape[-1] != channels
            or any(e is not None and e != got for e, got in zip(expected, batch.shape[1:]))
        ):
            raise DataError(
                f"representative_data element {i} has shape {batch.shape}; the model takes "
                f"images [batch, {height}, {width}, {channels}]"
            )
        if batch.dtype != np.uint8:
            if not np.issubdtype(batch.dtype, np.number) or (
                batch.size and (batch.min() < 0 or batch.max() > 255)
            ):
                raise DataError(
                    f"representative_data element {i} ({batch.dtype}) is not raw 0..255 pixels"
                )
            batch = np.round(batch).astype(np.uint8)
        for image in batch:
            images.append(image[None])
            if len(images) >= limit:
                return images
    if not images:
        raise DataError("representative_data holds no images")
    return images


def _to_tflite(
    saved: pathlib.Path, path: pathlib.Path, *, quantization: str | None = None, sample=None
) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved), signature_keys=[IMAGES_SIGNATURE]
    )
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image] for image in sample)
    fd, name = tempfile.mkstemp(prefix="keras_cnnkit-tflite-", suffix=".log")
    os.close(fd)
    log = pathlib.Path(name)
    try:
        with _stderr_to(log):
            return converter.convert()
    except Exception as exc:  # the converter raises ConverterError and plain exceptions
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"\n{type(exc).__name__}: {exc}\n")
        keep, log = log, None
        raise StorageError(
            f"cannot convert the model to TFLite for {str(path)!r}: {_first_error(exc)} "
            f"(the converter's log is in {str(keep)!r})"
        ) from None
    finally:
        if log is not None:
            log.unlink(missing_ok=True)


def _first_error(exc: Exception) -> str:
    """The converter's first error, without the MLIR location, shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line.rsplit("error:", 1)[1].strip() for line in lines if "error:" in line]
    errors = [re.sub(r"^loc\(.*\)\):\s*", "", e) for e in errors]
    errors = [e for e in errors if e] or lines or [type(exc).__name__]
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return errors[0][:200] + more


@contextlib.contextmanager
def _stderr_to(path: pathlib.Path):
    """Send file descriptor 2 (where the converter's C++ code logs) to ``path``."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as f:
            os.dup2(f.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)
