"""Decoding and resizing one image: the one function every route from a file to a model uses.

:func:`decode_image` turns the bytes of a JPEG, PNG, BMP, GIF or WebP file into ``uint8``
pixels with TensorFlow ops only: the format is sniffed from the first bytes, the pixel
limit checked against the header, JPEGs decoded at a reduced DCT scale when that still
covers the output size, the EXIF orientation of JPEGs applied, alpha composited over
white, 16-bit images scaled to 8 bits and the colour mode converted. :func:`resize_image`
resizes, crops or pads and rounds back to ``uint8``. Because both are plain TensorFlow
ops, the same function runs inside the ``tf.data`` pipelines, in the Python single-image
reader (through one cached ``tf.function``) and inside the exported ``serving_bytes``
graph, and gives the same pixels on every route.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from keras_cnnkit.data._config import DataConfig
from keras_cnnkit.data._layers import ImagePreprocessing

#: DCT scales at which JPEGs may be decoded (1/1, 1/2, 1/4, 1/8).
JPEG_RATIOS = (1, 2, 4, 8)

#: How far into a JPEG the EXIF orientation is looked for.
_EXIF_WINDOW = 65536


def _bytes_at(data: tf.Tensor, start: int, length: int) -> tf.Tensor:
    """``length`` bytes of ``data`` from ``start`` as int64 (zeros past the end)."""
    padded = tf.strings.join([data, tf.constant(b"\0" * (start + length))])
    raw = tf.io.decode_raw(tf.strings.substr(padded, start, length), tf.uint8)
    return tf.cast(raw, tf.int64)


def _header_size(data: tf.Tensor, is_jpeg: tf.Tensor) -> tf.Tensor:
    """``[height, width]`` from the header (``[-1, -1]`` where the format hides it)."""

    def jpeg():
        return tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64)

    def other():
        png = _bytes_at(data, 16, 8)  # IHDR: width, height, big-endian
        gif = _bytes_at(data, 6, 4)  # logical screen: width, height, little-endian
        bmp = _bytes_at(data, 18, 8)  # BITMAPINFOHEADER: width, height, little-endian
        magic = tf.strings.substr(tf.strings.join([data, tf.constant(b"\0" * 8)]), 0, 8)
        be = lambda b, i: b[i] * 16777216 + b[i + 1] * 65536 + b[i + 2] * 256 + b[i + 3]  # noqa: E731
        le32 = lambda b, i: b[i] + b[i + 1] * 256 + b[i + 2] * 65536 + b[i + 3] * 16777216  # noqa: E731
        bmp_h = le32(bmp, 4)
        bmp_h = tf.where(bmp_h >= 2**31, 2**32 - bmp_h, bmp_h)  # top-down bitmaps
        return tf.case(
            [
                (tf.equal(magic, b"\x89PNG\r\n\x1a\n"), lambda: tf.stack([be(png, 4), be(png, 0)])),
                (
                    tf.equal(tf.strings.substr(magic, 0, 3), b"GIF"),
                    lambda: tf.stack([gif[2] + gif[3] * 256, gif[0] + gif[1] * 256]),
                ),
                (
                    tf.equal(tf.strings.substr(magic, 0, 2), b"BM"),
                    lambda: tf.stack([bmp_h, le32(bmp, 0)]),
                ),
            ],
            default=lambda: tf.constant([-1, -1], tf.int64),
        )

    return tf.cond(is_jpeg, jpeg, other)


def _exif_orientation(data: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation tag (1..8) of a JPEG's APP1 segment; 1 when absent or malformed."""
    head = tf.strings.substr(data, 0, tf.minimum(tf.strings.length(data), _EXIF_WINDOW))
    b = tf.cast(
        tf.io.decode_raw(tf.strings.join([head, tf.constant(b"\0" * 32)]), tf.uint8), tf.int64
    )
    n = tf.shape(b, out_type=tf.int64)[0]
    m = n - 32
    # APP1 marker FF E1, 2 length bytes, then "Exif\0\0" and the TIFF header
    hit = b[0:m] == 0xFF
    for offset, value in enumerate((0xE1, None, None, 0x45, 0x78, 0x69, 0x66, 0, 0)):
        if value is not None:
            hit = tf.logical_and(hit, b[offset + 1 : m + offset + 1] == value)
    found = tf.where(hit)

    def parse():
        tiff = found[0, 0] + 10

        def byte(i):
            return tf.gather(b, tf.clip_by_value(i, 0, n - 1))

        little = tf.logical_and(tf.equal(byte(tiff), 0x49), tf.equal(byte(tiff + 1), 0x49))

        def u16(i):
            return tf.where(little, byte(i) + byte(i + 1) * 256, byte(i) * 256 + byte(i + 1))

        def u32(i):
            return tf.where(
                little,
                u16(i) + u16(i + 2) * 65536,
                u16(i) * 65536 + u16(i + 2),
            )

        ifd = tiff + u32(tiff + 4)
        count = tf.minimum(u16(ifd), 64)
        entries = ifd + 2 + 12 * tf.range(count, dtype=tf.int64)
        tags = u16(entries)
        values = u16(entries + 8)
        match = tf.where(tf.equal(tags, 0x0112))
        value = tf.cond(
            tf.size(match) > 0,
            lambda: tf.gather(values, match[0, 0]),
            lambda: tf.constant(1, tf.int64),
        )
        ok = tf.logical_and(ifd + 2 < n, tf.logical_and(value >= 1, value <= 8))
        return tf.where(ok, value, tf.constant(1, tf.int64))

    return tf.cond(tf.size(found) > 0, parse, lambda: tf.constant(1, tf.int64))


def _orient(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Apply an EXIF orientation as Pillow's ``ImageOps.exif_transpose`` does."""
    branches = [
        lambda: image,  # 1
        lambda: tf.reverse(image, [1]),  # 2: mirror left-right
        lambda: tf.reverse(image, [0, 1]),  # 3: rotate 180
        lambda: tf.reverse(image, [0]),  # 4: mirror top-bottom
        lambda: tf.transpose(image, [1, 0, 2]),  # 5: transpose
        lambda: tf.image.rot90(image, k=3),  # 6: rotate 270 (clockwise 90)
        lambda: tf.reverse(tf.transpose(image, [1, 0, 2]), [0, 1]),  # 7: transverse
        lambda: tf.image.rot90(image, k=1),  # 8: rotate 90
    ]
    return tf.switch_case(tf.cast(orientation - 1, tf.int32), branches)


def _resize_target(config: DataConfig) -> tuple[int, int] | None:
    if config.image_size is None:
        return None
    h, w = config.image_size
    if config.center_crop is not None:
        h, w = round(h / config.center_crop), round(w / config.center_crop)
    return h, w


def _to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """``uint8`` pixels of 1 to 4 channels to ``channels``, alpha over white."""

    def over_white(colour, alpha):
        c = tf.cast(colour, tf.float32)
        a = tf.cast(alpha, tf.float32) / 255.0
        return tf.cast(tf.round(255.0 - (255.0 - c) * a), tf.uint8)

    n = tf.shape(image)[-1]
    rgb_like = tf.switch_case(
        tf.clip_by_value(n - 1, 0, 3),
        [
            lambda: tf.tile(image[..., :1], [1, 1, 3]),  # L
            lambda: tf.tile(over_white(image[..., :1], image[..., 1:2]), [1, 1, 3]),  # LA
            lambda: image[..., :3],  # RGB
            lambda: over_white(image[..., :3], image[..., 3:4]),  # RGBA
        ],
    )
    if channels == 3:
        return rgb_like
    gray_source = tf.switch_case(
        tf.clip_by_value(n - 1, 0, 3),
        [
            lambda: image[..., :1],
            lambda: over_white(image[..., :1], image[..., 1:2]),
            lambda: tf.zeros_like(image[..., :1]),
            lambda: tf.zeros_like(image[..., :1]),
        ],
    )
    gray = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(rgb_like, tf.float32))), tf.uint8)
    return tf.where(n <= 2, gray_source, gray)


def decode_image(data: tf.Tensor, config: DataConfig, max_pixels: int | None = None) -> tf.Tensor:
    """Decode the bytes of one image file to ``uint8`` ``(height, width, channels)``.

    TensorFlow ops only, so it runs in ``tf.data``, eagerly and inside an exported graph.

    Args:
        data: A scalar ``tf.string`` tensor with the file's bytes.
        config: The target :class:`~keras_cnnkit.data.DataConfig` (its colour mode and
            output size; the size chooses the JPEG DCT scale).
        max_pixels: Largest ``width * height`` decoded, or ``None`` for no limit.

    Returns:
        The pixels, oriented as the EXIF orientation says.

    Raises:
        tf.errors.InvalidArgumentError: If the bytes are not a decodable image or are over
            the pixel limit (the Python routes turn this into an ``ImageDecodeError``
            naming the file).
    """
    channels = config.channels
    magic = tf.strings.substr(tf.strings.join([data, tf.constant(b"\0\0\0")]), 0, 3)
    is_jpeg = tf.equal(magic, b"\xff\xd8\xff")
    size = _header_size(data, is_jpeg)
    checks = []
    if max_pixels is not None:
        checks.append(
            tf.debugging.assert_less_equal(
                size[0] * size[1],
                tf.constant(int(max_pixels), tf.int64),
                message=f"image is over the pixel limit max_pixels={int(max_pixels)}",
            )
        )
    target = _resize_target(config)
    with tf.control_dependencies(checks):
        orientation = tf.cond(
            is_jpeg, lambda: _exif_orientation(data), lambda: tf.constant(1, tf.int64)
        )

    def jpeg():
        ratio = tf.constant(0, tf.int32)
        if target is not None:
            swapped = orientation >= 5
            h = tf.where(swapped, size[1], size[0])
            w = tf.where(swapped, size[0], size[1])
            for i, r in enumerate(JPEG_RATIOS[1:], start=1):
                fits = tf.logical_and(h >= r * target[0], w >= r * target[1])
                ratio = tf.where(fits, tf.constant(i, tf.int32), ratio)

        def at(r):
            return lambda: tf.io.decode_jpeg(data, channels=0, ratio=r)

        image = tf.switch_case(ratio, [at(r) for r in JPEG_RATIOS])
        return _orient(image, orientation)

    def other():
        return tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)

    with tf.control_dependencies(checks):
        image = tf.cond(is_jpeg, jpeg, other)
    image.set_shape([None, None, None])
    if max_pixels is not None:
        shape = tf.shape(image, out_type=tf.int64)
        with tf.control_dependencies(
            [
                tf.debugging.assert_less_equal(
                    shape[0] * shape[1],
                    tf.constant(int(max_pixels), tf.int64),
                    message=f"image is over the pixel limit max_pixels={int(max_pixels)}",
                )
            ]
        ):
            image = tf.identity(image)
    image = _to_channels(image, channels)
    image.set_shape([None, None, channels])
    return image


@functools.lru_cache(maxsize=64)
def resizer(config: DataConfig) -> ImagePreprocessing | None:
    """The resize (and center crop) layer of ``config``, shared by every route."""
    if config.image_size is None:
        return None
    return ImagePreprocessing(
        config.image_size,
        resize_mode=config.resize_mode,
        interpolation=config.interpolation,
        center_crop=config.center_crop,
        antialias=config.antialias,
    )


def to_uint8(x: tf.Tensor) -> tf.Tensor:
    """Round and clip float pixels to ``uint8``."""
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def resize_image(image: tf.Tensor, config: DataConfig) -> tf.Tensor:
    """Resize decoded ``uint8`` pixels as ``config`` says; ``uint8`` out.

    Args:
        image: ``(height, width, channels)`` or a batch of them.
        config: The target :class:`~keras_cnnkit.data.DataConfig`.

    Returns:
        The resized pixels (``image`` itself when the config keeps the size).
    """
    layer = resizer(config)
    if layer is None:
        return image
    return to_uint8(layer.resize(image))


def decode_and_resize(
    data: tf.Tensor, config: DataConfig, max_pixels: int | None = None
) -> tf.Tensor:
    """:func:`decode_image` then :func:`resize_image`: file bytes to model input pixels.

    Args:
        data: A scalar ``tf.string`` tensor with the file's bytes.
        config: The target :class:`~keras_cnnkit.data.DataConfig`.
        max_pixels: Largest ``width * height`` decoded, or ``None``.

    Returns:
        ``uint8`` pixels ``(height, width, channels)`` of the model's input size.
    """
    return resize_image(decode_image(data, config, max_pixels), config)


@functools.lru_cache(maxsize=64)
def graph_decoder(config: DataConfig, max_pixels: int | None, resize: bool = True):
    """One cached ``tf.function`` of :func:`decode_and_resize` for eager callers."""

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)], reduce_retracing=True)
    def run(data):
        if resize:
            return decode_and_resize(data, config, max_pixels)
        return decode_image(data, config, max_pixels)

    return run
