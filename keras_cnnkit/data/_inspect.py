"""What an image file claims to be, read from its header with Pillow, before any decoding.

The header gives the format, the colour mode and the size, so that a file that is not an
image, is empty or unreadable, is in an unsupported format or is over the pixel limit (the
decompression-bomb guard) is refused by name before a single pixel is decoded. The pixels
themselves are decoded by :mod:`keras_cnnkit.data._decode`.
"""

from __future__ import annotations

import dataclasses
import os
import threading

from PIL import Image, UnidentifiedImageError

from keras_cnnkit.errors import ImageDecodeError


def _decodes_webp() -> bool:
    import tensorflow as tf

    return hasattr(tf.io, "decode_webp")  # TensorFlow 2.18 and later


#: Pillow format names that are decoded (WebP where TensorFlow decodes it, 2.18 and later).
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "GIF") + (
    ("WEBP",) if _decodes_webp() else ()
)

#: Default pixel limit (width * height) above which a file is refused: Pillow's own
#: decompression-bomb threshold (about 89 megapixels).
DEFAULT_MAX_PIXELS: int = 89_478_485

#: Kept for compatibility: every file is now decoded by the same TensorFlow decoder.
DECODER_TF = 0

_OPEN_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What :func:`inspect_image` learnt about a readable image file.

    Attributes:
        path: The file.
        format: Pillow format name (``"JPEG"``, ``"PNG"``...).
        mode: Pillow mode (``"RGB"``, ``"CMYK"``, ``"I;16"``...).
        width: Width in pixels, as stored (before any EXIF orientation).
        height: Height in pixels, as stored.
        decoder: Always ``0``: one decoder serves every file (kept for compatibility).
    """

    path: str
    format: str
    mode: str
    width: int
    height: int
    decoder: int = DECODER_TF


def display_path(path) -> str:
    """``path`` as text for messages, with undecodable bytes shown as escapes."""
    text = os.fsdecode(path) if isinstance(path, bytes) else os.fspath(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def decode_error(path, reason: str) -> ImageDecodeError:
    """An :class:`ImageDecodeError` whose message starts with ``path``.

    Args:
        path: The file (str, bytes or path-like).
        reason: What is wrong, in words.

    Returns:
        The error, with ``path`` and ``reason`` attributes.
    """
    shown = display_path(path)
    err = ImageDecodeError(f"{shown}: {reason}")
    err.path = shown
    err.reason = reason
    return err


def _open(path, max_pixels: int | None) -> Image.Image:
    limit = Image.MAX_IMAGE_PIXELS
    if max_pixels is not None and limit is not None and max_pixels <= limit:
        return Image.open(path)
    # The caller accepts more pixels than Pillow's global limit: lift it while the
    # header is parsed (our own check follows), without touching it for other callers.
    with _OPEN_LOCK:
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def check_header(path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read the header of ``path`` and check it, without decoding the pixels.

    Args:
        path: The image file (str, bytes or path-like).
        max_pixels: Largest ``width * height`` accepted, or ``None`` for no limit.

    Returns:
        The file's :class:`ImageInfo`.

    Raises:
        ImageDecodeError: If the file cannot be read, is empty, is not an image, is in an
            unsupported format, exceeds ``max_pixels`` or claims more pixels than its size
            can hold. The message starts with the path.
    """
    if not isinstance(path, bytes):
        path = os.fspath(path)
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise decode_error(path, f"cannot read file ({exc.strerror or exc})") from exc
    if size == 0:
        raise decode_error(path, "file is empty (0 bytes)")
    try:
        im = _open(path, max_pixels)
    except PermissionError as exc:
        raise decode_error(path, "cannot read file (permission denied)") from exc
    except Image.DecompressionBombError as exc:
        raise decode_error(
            path, f"image is too large ({exc}); pass a larger max_pixels to accept it"
        ) from exc
    except UnidentifiedImageError as exc:
        raise decode_error(
            path, "not an image file Pillow can identify (corrupt or not an image)"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise decode_error(path, f"cannot read file ({exc})") from exc
    with im:
        fmt, mode, (width, height) = im.format or "?", im.mode, im.size
    if fmt not in SUPPORTED_FORMATS:
        raise decode_error(
            path, f"unsupported image format {fmt}; supported: {', '.join(SUPPORTED_FORMATS)}"
        )
    if max_pixels is not None and width * height > max_pixels:
        raise decode_error(
            path,
            f"image is {width}x{height} = {width * height} pixels, over the limit "
            f"max_pixels={max_pixels} (decompression-bomb guard); pass a larger "
            "max_pixels to accept it",
        )
    if width == 0 or height == 0:
        raise decode_error(path, f"image has zero size ({width}x{height})")
    if fmt == "PNG":
        # Deflate cannot compress beyond ~1032:1, so a file far smaller than its
        # header's pixel count claims is corrupt (or a forged header).
        bands = Image.getmodebands(mode) if mode in Image.MODES else 4
        raw = height * (1 + width * bands * (2 if "16" in mode else 1))
        if raw > 1100 * size:
            raise decode_error(
                path, f"corrupt image data ({size} bytes cannot hold the {width}x{height} pixels)"
            )
    return ImageInfo(display_path(path), fmt, mode, width, height)


def diagnose(path, message: str) -> str:
    """A reason, in words, for a file that the decoder refused with ``message``.

    Pillow reads the file in full to tell a truncated file from corrupt data; the
    decoder's own message is kept.

    Args:
        path: The file.
        message: The decoder's error message.

    Returns:
        The reason.
    """
    first = "decoding failed"
    for line in message.splitlines():  # TensorFlow's "{{function_node ...}} text [Op:...]"
        text = line.split("}}")[-1].split(" [Op:")[0].strip()
        if text and not text.startswith(("Graph execution error", "Detected at node", "[[")):
            first = text
            break
    try:
        with _open(path, None) as im:
            im.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc) or type(exc).__name__
        if "truncated" in text or isinstance(exc, EOFError):
            return f"file is truncated ({text}); decoder: {first}"
        return f"corrupt image data ({text}); decoder: {first}"
    return f"corrupt image data (decoder: {first})"
