"""Checking and decoding image files with Pillow, with errors that name the file.

Every file goes through :func:`inspect_image` before it enters a pipeline: the header
is read, the pixel count checked against a limit, and the data decoded once (JPEGs at
1/8 scale, which still reads every byte) so that a truncated or corrupt file is found
up front with its name, never mid-epoch. Files TensorFlow decodes natively (baseline
8-bit RGB/grayscale JPEG and PNG) are then decoded by TensorFlow; every other mode
(CMYK, palette, alpha, 16-bit, GIF, BMP, WebP) by :func:`decode_image_file`.
"""

from __future__ import annotations

import dataclasses
import os
import threading

import numpy as np
from PIL import Image, UnidentifiedImageError

from keras_cnnkit.errors import ImageDecodeError

#: File extensions a folder scan picks up (case-insensitive).

#: Pillow format names that are decoded.
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "GIF", "WEBP")

#: Default pixel limit (width * height) above which a file is refused: Pillow's own
#: decompression-bomb threshold (about 89 megapixels).
DEFAULT_MAX_PIXELS: int = 89_478_485

#: Kinds of decoding, chosen per file by :func:`inspect_image`.
DECODER_TF = 0  # TensorFlow decodes it (baseline 8-bit RGB/L JPEG and PNG).
DECODER_PIL = 1  # Pillow decodes it (every other mode and format).

_OPEN_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What :func:`inspect_image` learnt about a readable image file.

    Attributes:
        path: The file.
        format: Pillow format name (``"JPEG"``, ``"PNG"``...).
        mode: Pillow mode (``"RGB"``, ``"CMYK"``, ``"I;16"``...).
        width: Width in pixels.
        height: Height in pixels.
        decoder: :data:`DECODER_TF` or :data:`DECODER_PIL`.
    """

    path: str
    format: str
    mode: str
    width: int
    height: int
    decoder: int


def _open(path: str, max_pixels: int | None) -> Image.Image:
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


def inspect_image(path: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Check that ``path`` is a decodable image within the pixel limit.

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
    path = str(path)

    def fail(reason: str) -> ImageDecodeError:
        err = ImageDecodeError(f"{path}: {reason}")
        err.path = path
        err.reason = reason
        return err

    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise fail(f"cannot read file ({exc.strerror or exc})") from exc
    if size == 0:
        raise fail("file is empty (0 bytes)")
    try:
        im = _open(path, max_pixels)
    except PermissionError as exc:
        raise fail("cannot read file (permission denied)") from exc
    except Image.DecompressionBombError as exc:
        raise fail(f"image is too large ({exc}); pass a larger max_pixels to accept it") from exc
    except UnidentifiedImageError as exc:
        raise fail("not an image file Pillow can identify (corrupt or not an image)") from exc
    except OSError as exc:
        raise fail(f"cannot read file ({exc})") from exc
    with im:
        fmt, mode, (width, height) = im.format or "?", im.mode, im.size
        if fmt not in SUPPORTED_FORMATS:
            raise fail(f"unsupported image format {fmt}; supported: {', '.join(SUPPORTED_FORMATS)}")
        if max_pixels is not None and width * height > max_pixels:
            raise fail(
                f"image is {width}x{height} = {width * height} pixels, over the limit "
                f"max_pixels={max_pixels} (decompression-bomb guard); pass a larger "
                "max_pixels to accept it"
            )
        if width == 0 or height == 0:
            raise fail(f"image has zero size ({width}x{height})")
        try:
            if fmt == "JPEG":
                # DCT scaling: the whole stream is read and entropy-decoded at 1/8 cost.
                im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
                im.load()
            elif fmt == "PNG":
                im.verify()  # every chunk and CRC, without inflating the pixels
                # Deflate cannot compress beyond ~1032:1, so a file far smaller than its
                # header's pixel count claims is corrupt (or a forged header).
                raw = height * (1 + width * len(im.getbands()) * (2 if "16" in mode else 1))
                if raw > 1100 * size:
                    raise ValueError(f"{size} bytes cannot hold the {width}x{height} pixels")
            else:
                im.load()
        except Image.DecompressionBombError as exc:
            raise fail(f"image is too large ({exc}); pass a larger max_pixels") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            reason = str(exc) or type(exc).__name__
            if "truncated" in reason or isinstance(exc, EOFError):
                reason = f"file is truncated ({reason})"
            else:
                reason = f"corrupt image data ({reason})"
            raise fail(reason) from exc
        fast = fmt in ("JPEG", "PNG") and mode in ("RGB", "L") and "transparency" not in im.info
    return ImageInfo(path, fmt, mode, width, height, DECODER_TF if fast else DECODER_PIL)


def to_array(im: Image.Image, channels: int = 3) -> np.ndarray:
    """Convert a Pillow image of any supported mode to ``uint8`` ``(h, w, channels)``.

    Alpha is composited over white; palette images are expanded; 16-bit and 32-bit
    integer images are scaled from 0..65535 to 0..255; CMYK is converted to RGB.

    Args:
        im: A loaded Pillow image.
        channels: 3 for RGB, 1 for grayscale.

    Returns:
        The pixels.
    """
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8), "L")
    elif mode == "1":
        im = im.convert("L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("LA", "La", "PA"):
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "RGBa"):
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im.convert("RGBA")).convert("RGB")
    target = "RGB" if channels == 3 else "L"
    if im.mode != target:
        im = im.convert(target)
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def decode_image_file(
    path: str, channels: int = 3, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode an image file with Pillow to ``uint8`` ``(height, width, channels)``.

    Handles JPEG (incl. CMYK), PNG (incl. palette, alpha, 16-bit), BMP, GIF (first
    frame) and WebP.

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
    inspect_image(path, max_pixels)
    try:
        with _open(str(path), max_pixels) as im:
            im.seek(0)
            im.load()
            return to_array(im, channels)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(f"{path}: cannot decode image ({exc})") from exc
