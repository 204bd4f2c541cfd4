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

# Plain TensorFlow ops, no Python control flow on tensors: nothing for AutoGraph to
# convert, and converting costs a second per trace.
_graph_only = tf.autograph.experimental.do_not_convert

#: DCT scales at which JPEGs may be decoded (1/1, 1/2, 1/4, 1/8).
JPEG_RATIOS = (1, 2, 4, 8)


@_graph_only
def _bytes_at(data: tf.Tensor, start, length: int) -> tf.Tensor:
    """``length`` bytes of ``data`` from ``start`` (int or tensor) as int32, zeros past the end."""
    padded = tf.strings.join([data, tf.constant(b"\0" * length)])
    if not isinstance(start, int):
        start = tf.clip_by_value(start, 0, tf.strings.length(data))
    raw = tf.io.decode_raw(tf.strings.substr(padded, start, length), tf.uint8)
    return tf.cast(raw, tf.int32)


@_graph_only
def _other_header_size(head: tf.Tensor) -> tf.Tensor:
    """``[height, width]`` of a PNG, GIF or BMP from its first 32 bytes; ``[0, 0]`` otherwise."""
    b = tf.cast(head, tf.int64)

    def be32(i):
        return b[i] * 16777216 + b[i + 1] * 65536 + b[i + 2] * 256 + b[i + 3]

    def le32(i):
        return b[i] + b[i + 1] * 256 + b[i + 2] * 65536 + b[i + 3] * 16777216

    png = tf.reduce_all(tf.equal(b[:4], tf.constant([0x89, 0x50, 0x4E, 0x47], tf.int64)))
    gif = tf.reduce_all(tf.equal(b[:3], tf.constant([0x47, 0x49, 0x46], tf.int64)))
    bmp = tf.reduce_all(tf.equal(b[:2], tf.constant([0x42, 0x4D], tf.int64)))
    bmp_h = le32(22)
    bmp_h = tf.where(bmp_h >= 2**31, 2**32 - bmp_h, bmp_h)  # top-down bitmaps
    zero = tf.constant([0, 0], tf.int64)
    size = tf.where(png, tf.stack([be32(20), be32(16)]), zero)
    size = tf.where(gif, tf.stack([b[8] + b[9] * 256, b[6] + b[7] * 256]), size)
    return tf.where(bmp, tf.stack([bmp_h, le32(18)]), size)


@_graph_only
def _exif_orientation(data: tf.Tensor) -> tf.Tensor:
    """The EXIF orientation (1..8) of a JPEG; 1 when absent or malformed.

    The APP1 ``Exif`` segment comes first after the start marker, or after the JFIF
    (APP0) segment: the first two segments are looked at, then the TIFF header and the
    first image directory. Arithmetic on a few bytes, no loop.
    """
    length = tf.strings.length(data)
    tiff = tf.constant(-1)
    pos = tf.constant(2)
    exif_id = tf.constant([0xFF, 0xE1, -1, -1, 0x45, 0x78, 0x69, 0x66, 0, 0])
    for _ in range(2):
        head = _bytes_at(data, pos, 10)
        match = tf.reduce_all(tf.logical_or(tf.equal(head, exif_id), exif_id < 0))
        tiff = tf.where(tf.logical_and(tiff < 0, match), pos + 10, tiff)
        pos = pos + 2 + head[2] * 256 + head[3]

    def parse():  # only for the files that have the segment
        head = _bytes_at(data, tiff, 8)
        little = tf.logical_and(tf.equal(head[0], 0x49), tf.equal(head[1], 0x49))

        def u16(b):
            return tf.where(little, b[..., 0] + b[..., 1] * 256, b[..., 0] * 256 + b[..., 1])

        offset = tf.where(
            little,
            u16(head[4:6]) + u16(head[6:8]) * 65536,
            u16(head[4:6]) * 65536 + u16(head[6:8]),
        )
        ifd = tiff + tf.clip_by_value(offset, 0, length)
        count = tf.clip_by_value(u16(_bytes_at(data, ifd, 2)), 0, 32)
        entries = tf.reshape(_bytes_at(data, ifd + 2, 32 * 12), [32, 12])
        tags = u16(entries[:, 0:2])
        values = u16(entries[:, 8:10])
        wanted = tf.logical_and(tf.equal(tags, 0x0112), tf.range(32) < count)
        value = tf.reduce_max(tf.where(wanted, values, 0))
        return tf.where(tf.logical_and(value >= 1, value <= 8), value, 1)

    return tf.cond(tiff >= 0, parse, lambda: tf.constant(1))


@_graph_only
def _orient(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Apply an EXIF orientation as Pillow's ``ImageOps.exif_transpose`` does."""
    branches = [
        lambda: image,  # 1
        lambda: tf.reverse(image, [1]),  # 2: mirror left-right
        lambda: tf.reverse(image, [0, 1]),  # 3: rotate 180
        lambda: tf.reverse(image, [0]),  # 4: mirror top-bottom
        lambda: tf.transpose(image, [1, 0, 2]),  # 5: transpose
        lambda: tf.reverse(tf.transpose(image, [1, 0, 2]), [1]),  # 6: rotate 270 (clockwise)
        lambda: tf.reverse(tf.transpose(image, [1, 0, 2]), [0, 1]),  # 7: transverse
        lambda: tf.reverse(tf.transpose(image, [1, 0, 2]), [0]),  # 8: rotate 90
    ]
    return tf.switch_case(orientation - 1, branches)


def _resize_target(config: DataConfig) -> tuple[int, int] | None:
    if config.image_size is None:
        return None
    h, w = config.image_size
    if config.center_crop is not None:
        h, w = round(h / config.center_crop), round(w / config.center_crop)
    return h, w


@_graph_only
def _to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """``uint8`` pixels of 1 to 4 channels to ``channels``, alpha composited over white."""
    x = tf.cast(image, tf.float32)
    n = tf.shape(image)[-1]
    padded = tf.pad(x, [[0, 0], [0, 0], [0, tf.maximum(3 - n, 0)]])
    rgb = tf.where(n >= 3, padded[..., :3], tf.tile(x[..., :1], [1, 1, 3]))
    alpha = tf.gather(x, n - 1, axis=-1)[..., None] / 255.0
    has_alpha = tf.logical_or(tf.equal(n, 2), tf.equal(n, 4))
    rgb = tf.where(has_alpha, 255.0 - (255.0 - rgb) * alpha, rgb)
    if channels == 3:
        return tf.cast(tf.round(rgb), tf.uint8)
    gray = tf.where(n >= 3, tf.image.rgb_to_grayscale(rgb), rgb[..., :1])
    return tf.cast(tf.round(gray), tf.uint8)


@_graph_only
def _pixel_check(size: tf.Tensor, max_pixels: int | None) -> list:
    if max_pixels is None:
        return []
    return [
        tf.debugging.assert_less_equal(
            tf.cast(size[0], tf.int64) * tf.cast(size[1], tf.int64),
            tf.constant(int(max_pixels), tf.int64),
            message=f"image is over the pixel limit max_pixels={int(max_pixels)}",
        )
    ]


@_graph_only
def _jpeg_plan(data: tf.Tensor, config: DataConfig):
    """A JPEG's stored size, DCT scale index and EXIF orientation."""
    size = tf.io.extract_jpeg_shape(data)
    orientation = _exif_orientation(data)
    ratio = tf.constant(0)
    target = _resize_target(config)
    if target is not None:
        swapped = orientation >= 5
        h = tf.where(swapped, size[1], size[0])
        w = tf.where(swapped, size[0], size[1])
        for i, r in enumerate(JPEG_RATIOS[1:], start=1):
            fits = tf.logical_and(h >= r * target[0], w >= r * target[1])
            ratio = tf.where(fits, i, ratio)
    return size, ratio, orientation


@_graph_only
def _decode_jpeg(data: tf.Tensor, ratio: tf.Tensor) -> tf.Tensor:
    # libjpeg straight to RGB (grayscale and CMYK included); grayscale output goes
    # through the same conversion as every other format
    def at(r):
        return lambda: tf.io.decode_jpeg(data, channels=3, ratio=r)

    return tf.switch_case(ratio, [at(r) for r in JPEG_RATIOS])


@_graph_only
def _decode_other(data: tf.Tensor, max_pixels: int | None) -> tf.Tensor:
    image = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
    with tf.control_dependencies(_pixel_check(tf.shape(image), max_pixels)):
        return tf.identity(image)


@_graph_only
def check_decode(data: tf.Tensor, config: DataConfig, max_pixels: int | None = None):
    """Decode ``data`` once as the pipeline will, for its check: its plan and size.

    Args:
        data: A scalar ``tf.string`` tensor with the file's bytes.
        config: The target :class:`~keras_cnnkit.data.DataConfig`.
        max_pixels: Largest ``width * height`` accepted, or ``None``.

    Returns:
        ``(is_jpeg, ratio_index, orientation, height, width)``: the plan of
        :func:`plan_decode` and the size of the decoded, turned image.

    Raises:
        tf.errors.InvalidArgumentError: If the bytes do not decode.
    """
    head = _bytes_at(data, 0, 32)
    is_jpeg = tf.reduce_all(tf.equal(head[:3], tf.constant([0xFF, 0xD8, 0xFF])))

    def jpeg():
        size, ratio, orientation = _jpeg_plan(data, config)
        with tf.control_dependencies(_pixel_check(size, max_pixels)):
            shape = tf.shape(_decode_jpeg(data, ratio))
        shape = tf.where(orientation >= 5, shape[1::-1], shape[:2])
        return ratio, orientation, shape[0], shape[1]

    def other():
        with tf.control_dependencies(_pixel_check(_other_header_size(head), max_pixels)):
            shape = tf.shape(_decode_other(data, max_pixels))
        return tf.constant(0), tf.constant(1), shape[0], shape[1]

    ratio, orientation, height, width = tf.cond(is_jpeg, jpeg, other)
    return is_jpeg, ratio, orientation, height, width


@_graph_only
def plan_decode(data: tf.Tensor, config: DataConfig, max_pixels: int | None = None):
    """What decoding ``data`` takes: ``(is_jpeg, ratio_index, orientation)``.

    The JPEG DCT scale (an index into :data:`JPEG_RATIOS`) and the EXIF orientation
    (1..8) are read from the header; for other formats they are 0 and 1. The pixel limit
    is checked against the header here.

    Args:
        data: A scalar ``tf.string`` tensor with the file's bytes.
        config: The target :class:`~keras_cnnkit.data.DataConfig`.
        max_pixels: Largest ``width * height`` accepted, or ``None``.

    Returns:
        Three scalar tensors (``bool``, ``int32``, ``int32``).
    """
    head = _bytes_at(data, 0, 32)
    is_jpeg = tf.reduce_all(tf.equal(head[:3], tf.constant([0xFF, 0xD8, 0xFF])))

    def jpeg():
        size, ratio, orientation = _jpeg_plan(data, config)
        with tf.control_dependencies(_pixel_check(size, max_pixels)):
            return tf.identity(ratio), tf.identity(orientation)

    def other():
        with tf.control_dependencies(_pixel_check(_other_header_size(head), max_pixels)):
            return tf.constant(0), tf.constant(1)

    ratio, orientation = tf.cond(is_jpeg, jpeg, other)
    return is_jpeg, ratio, orientation


def _by_format(formats: str, is_jpeg, jpeg, other, channels: int) -> tf.Tensor:
    """``jpeg()`` or ``other()``: the one ``formats`` names, else chosen by ``is_jpeg``."""
    if formats == "jpeg":
        image = jpeg()
    elif formats == "other":
        image = other()
    else:
        image = tf.cond(is_jpeg, jpeg, other)
    image.set_shape([None, None, channels])
    return image


@_graph_only
def decode_planned(
    data: tf.Tensor,
    plan,
    config: DataConfig,
    max_pixels: int | None = None,
    *,
    formats: str = "any",
    oriented: bool = True,
) -> tf.Tensor:
    """Decode ``data`` as :func:`plan_decode` planned it; see :func:`decode_image`.

    Args:
        data: A scalar ``tf.string`` tensor with the file's bytes.
        plan: ``(is_jpeg, ratio_index, orientation)`` from :func:`plan_decode`.
        config: The target :class:`~keras_cnnkit.data.DataConfig`.
        max_pixels: Largest ``width * height`` decoded, or ``None``.
        formats: ``"any"``; or ``"jpeg"`` / ``"other"`` when every file of a pipeline is
            known (from its check) to be a JPEG / not a JPEG, which leaves out the branch
            that cannot run (the same ops run).
        oriented: ``False`` when every file is known to have no EXIF turn (orientation 1),
            which leaves out the identity turn.

    Returns:
        The pixels.
    """
    channels = config.channels
    is_jpeg, ratio, orientation = plan

    def jpeg():
        image = _decode_jpeg(data, ratio)
        if oriented:
            image = _orient(image, orientation)
        return image if channels == 3 else _to_channels(image, channels)

    def other():
        return _to_channels(_decode_other(data, max_pixels), channels)

    return _by_format(formats, is_jpeg, jpeg, other, channels)


@_graph_only
def _stored_window(top, left, height, width, stored_h, stored_w, orientation):
    """The stored-pixel rectangle that an EXIF ``orientation`` turns into a shown window.

    ``(top, left, height, width)`` is a window of the image as shown (after
    :func:`_orient`); the result is the rectangle of the stored image that becomes it.
    """
    swapped = orientation >= 5
    # turns 2, 3, 7 mirror the stored columns, 3, 4, 6, 7 the stored rows (shown axes
    # swap for 5..8)
    top_s = tf.where(swapped, left, top)
    left_s = tf.where(swapped, top, left)
    h_s = tf.where(swapped, width, height)
    w_s = tf.where(swapped, height, width)
    mirror_rows = tf.reduce_any(tf.equal(orientation, [3, 4, 6, 7]))
    mirror_cols = tf.reduce_any(tf.equal(orientation, [2, 3, 7, 8]))
    top_s = tf.where(mirror_rows, stored_h - top_s - h_s, top_s)
    left_s = tf.where(mirror_cols, stored_w - left_s - w_s, left_s)
    return top_s, left_s, h_s, w_s


@_graph_only
def decode_window(
    data: tf.Tensor,
    plan,
    window,
    config: DataConfig,
    max_pixels: int | None = None,
    *,
    formats: str = "any",
    oriented: bool = True,
    ratios: tuple[int, ...] = JPEG_RATIOS,
) -> tf.Tensor:
    """Decode only a window of ``data``: the pixels of a crop, before resizing.

    A JPEG decodes just the window (``decode_and_crop_jpeg``: the rows and blocks outside
    it are not reconstructed) and, when the window is at least twice the output size
    (``config.image_size``, before a center crop), at the reduced DCT scale that still
    covers it, as :func:`decode_image` does for a whole image. Other formats decode in
    full and the window is sliced out. The window is placed on the image as shown (EXIF
    orientation applied), so every format and orientation crops the same region.

    Args:
        data: A scalar ``tf.string`` tensor with the file's bytes.
        plan: ``(is_jpeg, ratio_index, orientation)`` from :func:`plan_decode` (its
            ratio is not used: the window's size decides).
        window: ``window(height, width) -> (top, left, window_height, window_width)``,
            called with the shown size of the image.
        config: The target :class:`~keras_cnnkit.data.DataConfig`.
        max_pixels: Largest ``width * height`` decoded (formats other than JPEG).
        formats: As for :func:`decode_planned`.
        oriented: As for :func:`decode_planned`.
        ratios: The DCT scales that may be used (a prefix of :data:`JPEG_RATIOS`); ``(1,)``
            when no image is twice the output size leaves out the choice.

    Returns:
        ``uint8`` pixels of the window; a JPEG window decoded at a DCT scale of ``1/r``
        is ``1/r`` of its size (rounded to whole pixels of the scaled image).

    Example:
        >>> import tensorflow as tf
        >>> from keras_cnnkit.data import DataConfig
        >>> data = tf.io.encode_jpeg(tf.zeros((40, 60, 3), tf.uint8))
        >>> config = DataConfig(image_size=(8, 8))
        >>> window = lambda height, width: (5, 10, 20, 30)  # top, left, height, width
        >>> pixels = decode_window(data, plan_decode(data, config), window, config)
        >>> tuple(pixels.shape)
        (10, 15, 3)
    """
    channels = config.channels
    is_jpeg, _, orientation = plan
    target = _resize_target(config)

    def jpeg():
        size = tf.io.extract_jpeg_shape(data, output_type=tf.int32)
        turned = orientation >= 5 if oriented else tf.constant(False)
        shown_h = tf.where(turned, size[1], size[0])
        shown_w = tf.where(turned, size[0], size[1])
        top, left, h, w = (tf.cast(v, tf.int32) for v in window(shown_h, shown_w))
        ratio = tf.constant(0)
        if target is not None:
            for i, r in enumerate(ratios[1:], start=1):
                fits = tf.logical_and(h >= r * target[0], w >= r * target[1])
                ratio = tf.where(fits, i, ratio)
        if oriented:
            top, left, h, w = _stored_window(top, left, h, w, size[0], size[1], orientation)

        def at(r):
            def run():
                y, x = top // r, left // r
                box = tf.stack(
                    [y, x, tf.maximum((top + h) // r - y, 1), tf.maximum((left + w) // r - x, 1)]
                )
                return tf.image.decode_and_crop_jpeg(data, box, channels=3, ratio=r)

            return run

        if len(ratios) == 1:
            image = at(ratios[0])()
        else:
            image = tf.switch_case(ratio, [at(r) for r in ratios])
        if oriented:
            image = _orient(image, orientation)
        return image if channels == 3 else _to_channels(image, channels)

    def other():
        image = _to_channels(_decode_other(data, max_pixels), channels)
        shape = tf.shape(image)
        top, left, h, w = (tf.cast(v, tf.int32) for v in window(shape[0], shape[1]))
        return image[top : top + h, left : left + w]

    return _by_format(formats, is_jpeg, jpeg, other, channels)


@_graph_only
def decode_image(data: tf.Tensor, config: DataConfig, max_pixels: int | None = None) -> tf.Tensor:
    """Decode the bytes of one image file to ``uint8`` ``(height, width, channels)``.

    TensorFlow ops only, so it runs in ``tf.data``, eagerly and inside an exported graph.
    JPEGs are decoded by libjpeg to RGB (at a reduced DCT scale when that still covers
    the output size) and turned as their EXIF orientation says; other formats are decoded
    with their own channels and alpha composited over white; grayscale output is
    ``rgb_to_grayscale``, rounded.

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
    return decode_planned(data, plan_decode(data, config, max_pixels), config, max_pixels)


def preprocessing_layer(config: DataConfig, normalize=None) -> ImagePreprocessing:
    """An :class:`ImagePreprocessing` layer with the resize settings of ``config``.

    Args:
        config: A :class:`~keras_cnnkit.data.DataConfig` with an image size.
        normalize: The layer's ``normalize`` argument.

    Returns:
        The layer.
    """
    return ImagePreprocessing(
        config.image_size,
        resize_mode=config.resize_mode,
        interpolation=config.interpolation,
        center_crop=config.center_crop,
        antialias=config.antialias,
        normalize=normalize,
    )


@functools.lru_cache(maxsize=64)
def resizer(config: DataConfig) -> ImagePreprocessing | None:
    """The resize (and center crop) layer of ``config``, shared by every route."""
    return None if config.image_size is None else preprocessing_layer(config)


@_graph_only
def to_uint8(x: tf.Tensor) -> tf.Tensor:
    """Round and clip float pixels to ``uint8``."""
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


@_graph_only
def resize_image(image: tf.Tensor, config: DataConfig) -> tf.Tensor:
    """Resize decoded ``uint8`` pixels as ``config`` says; ``uint8`` out.

    Args:
        image: ``(height, width, channels)`` or a batch of them.
        config: The target :class:`~keras_cnnkit.data.DataConfig`.

    Returns:
        The resized pixels (``image`` itself when the config keeps the size).
    """
    if config.image_size is None:
        return image
    return to_uint8(resize_float(image, config))


@_graph_only
def resize_float(image: tf.Tensor, config: DataConfig) -> tf.Tensor:
    """Resize (and center-crop) to ``float32`` 0..255 values, with TensorFlow ops only.

    The Keras ``Resizing`` and ``CenterCrop`` layers of :func:`resizer` run here through
    their TensorFlow implementation whatever the Keras backend, so a ``tf.data`` pipeline
    gives the same pixels under JAX or PyTorch as under TensorFlow.

    Args:
        image: ``(height, width, channels)`` or a batch of them.
        config: The target :class:`~keras_cnnkit.data.DataConfig` (with an image size).

    Returns:
        The resized ``float32`` pixels.
    """
    layer = resizer(config)
    x = tf.cast(image, tf.float32)
    for step in (layer.resizing, layer.cropping):
        if step is not None:
            with tensorflow_backend(step):
                x = step(x)
    return x


class tensorflow_backend:  # noqa: N801 - used as a context manager
    """Run Keras preprocessing layers on their TensorFlow implementation, on any backend."""

    def __init__(self, *layers):
        self.layers = [layer for layer in layers if hasattr(layer, "backend")]

    def __enter__(self):
        for layer in self.layers:
            if hasattr(layer.backend, "set_backend"):
                layer.backend.set_backend("tensorflow")
        return self

    def __exit__(self, *exc):
        for layer in self.layers:
            if hasattr(layer.backend, "reset"):
                layer.backend.reset()
        return False


@_graph_only
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
