"""Reading image files in Python (``cnnkit predict``) with the pipelines' decoder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from keras_cnnkit.data._config import DataConfig, data_config
from keras_cnnkit.data._decode import graph_decoder
from keras_cnnkit.data._inspect import (
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    check_header,
    decode_error,
    diagnose,
)
from keras_cnnkit.data._report import SkipReport
from keras_cnnkit.errors import ImageDecodeError, SpecError

ON_ERROR = ("raise", "skip")


def _file_bytes(path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise decode_error(path, f"cannot read file ({exc.strerror or exc})") from exc


def decode_bytes(path, data: bytes, config: DataConfig, max_pixels, resize: bool = True):
    """Decode ``data`` (the bytes of ``path``) with the one decoder; errors name ``path``."""
    try:
        return graph_decoder(config, max_pixels, resize)(tf.constant(data)).numpy()
    except tf.errors.OpError as exc:
        raise decode_error(path, diagnose(path, exc.message)) from None


def read_image(
    path: str | os.PathLike,
    config=None,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read one image file as the model's input: the pipelines' decoder, in Python.

    The same TensorFlow ops as :func:`from_files` and the exported ``serving_bytes``
    signature, so the pixels are identical to what the pipeline feeds the model.

    Args:
        path: The image file.
        config: A :class:`DataConfig`, or anything :func:`data_config` accepts (a model,
            ``(model, metadata)``); ``None`` decodes at the file's own size, RGB.
        max_pixels: Largest ``width * height`` accepted, or ``None``.

    Returns:
        ``uint8`` pixels ``(height, width, channels)``.

    Raises:
        ImageDecodeError: If the file cannot be read or decoded (the message names it).

    Example:
        >>> import os, tempfile
        >>> from PIL import Image
        >>> p = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> Image.new("RGB", (40, 30)).save(p)
        >>> read_image(p, DataConfig(image_size=(8, 8))).shape
        (8, 8, 3)
    """
    config = DataConfig(image_size=None) if config is None else data_config(config)
    check_header(path, max_pixels)
    return decode_bytes(path, _file_bytes(path), config, max_pixels)


def inspect_image(
    path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> ImageInfo:
    """Check that ``path`` is a decodable image within the pixel limit.

    The header is read with Pillow (format, size, pixel limit), then the file decoded
    once by the pipelines' decoder.

    Args:
        path: The image file.
        max_pixels: Largest ``width * height`` accepted, or ``None`` for no limit.

    Returns:
        The file's :class:`ImageInfo`.

    Raises:
        ImageDecodeError: If the file cannot be read, is empty, is not an image, is in
            an unsupported format, exceeds ``max_pixels``, or is truncated or corrupt.
            The message starts with the path.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> p = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> Image.new("RGB", (4, 3)).save(p)
        >>> info = inspect_image(p)
        >>> info.format, info.width, info.height
        ('PNG', 4, 3)
    """
    info = check_header(path, max_pixels)
    decode_bytes(path, _file_bytes(path), DataConfig(image_size=None), max_pixels, resize=False)
    return info


def decode_image_file(
    path: str | os.PathLike, channels: int = 3, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode an image file to ``uint8`` ``(height, width, channels)`` at its own size.

    JPEG (incl. CMYK and EXIF orientation), PNG (incl. palette, alpha over white,
    16-bit), BMP, GIF (first frame) and WebP, by the pipelines' decoder.

    Args:
        path: The image file.
        channels: 3 for RGB, 1 for grayscale.
        max_pixels: Largest ``width * height`` accepted, or ``None`` for no limit.

    Returns:
        The pixels.

    Raises:
        ImageDecodeError: If the file cannot be decoded (the message names it).

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> p = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> Image.new("LA", (4, 3)).save(p)
        >>> decode_image_file(p).shape
        (3, 4, 3)
    """
    mode = {3: "rgb", 1: "grayscale"}.get(channels)
    if mode is None:
        raise SpecError(f"channels must be 1 or 3, got {channels!r}")
    return read_image(path, DataConfig(image_size=None, color_mode=mode), max_pixels=max_pixels)


def read_images(
    paths: Sequence[str | os.PathLike],
    config=None,
    *,
    on_error: str = "raise",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    report: SkipReport | None = None,
    num_workers: int | None = None,
) -> tuple[list[np.ndarray], list[str], SkipReport]:
    """Read many files with :func:`read_image`, in parallel, keeping their order.

    Args:
        paths: The image files.
        config: As in :func:`read_image`.
        on_error: ``"raise"`` (the first bad file, in order, raises) or ``"skip"`` (bad
            files are left out and recorded in the report).
        max_pixels: Largest ``width * height`` accepted, or ``None``.
        report: A :class:`SkipReport` to add to (a new one by default).
        num_workers: Reading threads (default: the CPU count).

    Returns:
        ``(images, kept_paths, report)``.

    Raises:
        ImageDecodeError: With ``on_error="raise"``, for the first bad file.
        SpecError: If ``on_error`` is unknown.
    """
    if on_error not in ON_ERROR:
        raise SpecError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    config = DataConfig(image_size=None) if config is None else data_config(config)
    report = SkipReport() if report is None else report

    def one(path):
        try:
            return read_image(path, config, max_pixels=max_pixels)
        except ImageDecodeError as exc:
            return exc

    paths = list(paths)
    if len(paths) > 1:
        with ThreadPoolExecutor(num_workers or os.cpu_count() or 1) as pool:
            results = list(pool.map(one, paths))
    else:
        results = [one(p) for p in paths]
    images, kept = [], []
    for path, res in zip(paths, results):
        if isinstance(res, ImageDecodeError):
            if on_error == "raise":
                raise res
            report.add(getattr(res, "path", str(path)), getattr(res, "reason", str(res)))
        else:
            images.append(res)
            kept.append(os.fspath(path))
    return images, kept, report
