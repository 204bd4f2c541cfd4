"""Decoding every supported mode, and every kind of bad file, with the file named."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from keras_cnnkit.data import SUPPORTED_FORMATS, decode_image_file, from_files, inspect_image
from keras_cnnkit.errors import DataError, ImageDecodeError


@pytest.mark.parametrize(
    ("name", "make", "expected_rgb"),
    [
        ("gray.png", lambda p: Image.new("L", (5, 4), 100).save(p), (100, 100, 100)),
        ("gray.jpg", lambda p: Image.new("L", (8, 8), 100).save(p, quality=100), (100, 100, 100)),
        ("la.png", lambda p: Image.new("LA", (5, 4), (100, 255)).save(p), (100, 100, 100)),
        ("rgba.png", lambda p: Image.new("RGBA", (5, 4), (10, 20, 30, 255)).save(p), (10, 20, 30)),
        # fully transparent pixels become the white background, not black
        ("clear.png", lambda p: Image.new("RGBA", (5, 4), (0, 0, 0, 0)).save(p), (255, 255, 255)),
        ("pal.png", lambda p: _palette((5, 4), (200, 10, 10)).save(p), (200, 10, 10)),
        ("pal.gif", lambda p: _palette((5, 4), (10, 200, 10)).save(p), (10, 200, 10)),
        ("img.bmp", lambda p: Image.new("RGB", (5, 4), (1, 2, 3)).save(p), (1, 2, 3)),
        pytest.param(
            "img.webp",
            lambda p: Image.new("RGB", (8, 8), (0, 0, 255)).save(p, lossless=True),
            (0, 0, 255),
            marks=pytest.mark.skipif(
                "WEBP" not in SUPPORTED_FORMATS, reason="TensorFlow < 2.18 decodes no WebP"
            ),
        ),
        (
            "g16.png",
            lambda p: Image.fromarray(np.full((4, 5), 65535, np.uint16)).save(p),
            (255, 255, 255),
        ),
        (
            "cmyk.jpg",
            lambda p: Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(p, quality=100),
            (255, 0, 0),
        ),
    ],
)
def test_decode_modes_to_rgb(tmp_path, name, make, expected_rgb):
    path = tmp_path / name
    make(path)
    image = decode_image_file(path, channels=3)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
    np.testing.assert_allclose(image.reshape(-1, 3).mean(axis=0), expected_rgb, atol=3)
    gray = decode_image_file(path, channels=1)
    assert gray.shape == image.shape[:2] + (1,)


def _palette(size, colour):
    im = Image.new("P", size, 0)
    im.putpalette(list(colour) + [0, 0, 0] * 255)
    return im


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    image = decode_image_file(tmp_path / "anim.gif")
    assert image.shape == (6, 6, 3)
    assert image[..., 0].mean() > 200 and image[..., 2].mean() < 50


def _text_as_jpg(p):
    p.write_text("this is not an image")


def _zero_bytes(p):
    p.write_bytes(b"")


def _tiff(p):
    Image.new("RGB", (4, 4)).save(p, format="TIFF")


@pytest.mark.tensorflow("from_files builds a tf.data pipeline")
@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("trunc.jpg", "truncated", "truncated"),
        ("text.jpg", _text_as_jpg, "not an image"),
        ("empty.jpg", _zero_bytes, "empty"),
        ("tiff.png", _tiff, "unsupported image format TIFF"),
        ("huge.png", "huge", "max_pixels"),
    ],
)
def test_bad_files_raise_and_skip_naming_the_file(tmp_path, writers, name, make, reason):
    bad = tmp_path / name
    if make == "truncated":
        writers.truncated_jpeg(bad)
    elif make == "huge":
        writers.huge_png_header(bad)
    else:
        make(bad)
    good = writers.rgb(tmp_path / "good.png")
    with pytest.raises(ImageDecodeError, match=reason) as info:
        inspect_image(bad)
    assert str(bad) in str(info.value)
    # on_error="raise": the pipeline stops at construction with the file named
    with pytest.raises(ImageDecodeError, match=reason) as info:
        from_files([good, bad], [0, 1], image_size=8)
    assert str(bad) in str(info.value)
    # on_error="skip": dropped, recorded with its reason, the rest flows
    ds = from_files([good, bad], [0, 1], image_size=8, on_error="skip", batch_size=None)
    assert ds.report.paths == [str(bad)]
    assert reason in ds.report.reason(str(bad))
    labels = [int(y) for _, y in ds]
    assert labels == [0]


def test_pixel_limit_can_be_lowered_and_raised(tmp_path, writers):
    path = writers.rgb(tmp_path / "big.png", size=(100, 80))
    with pytest.raises(ImageDecodeError, match="8000 pixels, over the limit max_pixels=5000"):
        inspect_image(path, max_pixels=5000)
    assert inspect_image(path, max_pixels=8000).width == 100
    # a header far over Pillow's own limit is still refused by name when the limit is lifted
    huge = writers.huge_png_header(tmp_path / "huge.png")
    with pytest.raises(ImageDecodeError, match="cannot hold") as info:
        inspect_image(huge, max_pixels=None)
    assert str(huge) in str(info.value)


@pytest.mark.tensorflow("from_files builds a tf.data pipeline")
@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode"
)
def test_unreadable_file(tmp_path, writers):
    path = writers.rgb(tmp_path / "locked.png")
    good = writers.rgb(tmp_path / "good.png")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this file system ignores permissions")
        with pytest.raises(ImageDecodeError, match="permission denied") as info:
            from_files([good, path], [0, 0], image_size=8)
        assert str(path) in str(info.value)
        ds = from_files([good, path], [0, 0], image_size=8, on_error="skip")
        assert ds.report.paths == [str(path)]
    finally:
        path.chmod(0o644)


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.jpg"
    with pytest.raises(ImageDecodeError, match="cannot read file") as info:
        inspect_image(missing)
    assert str(missing) in str(info.value)


@pytest.mark.tensorflow("from_files builds a tf.data pipeline")
def test_all_files_bad_is_a_data_error(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("x")
    with pytest.raises(DataError, match="no readable images"):
        from_files([bad], [0], on_error="skip")


@pytest.mark.tensorflow("from_files builds a tf.data pipeline")
def test_fast_and_pillow_paths_agree(tmp_path, writers):
    """A JPEG through TensorFlow's decoder and the same pixels through Pillow match."""
    from keras_cnnkit.data import from_files as ff

    rgb = writers.rgb(tmp_path / "a.png", size=(12, 10), seed=3)
    rgba = tmp_path / "b.png"
    Image.open(rgb).convert("RGBA").save(rgba)  # opaque alpha: same pixels, Pillow path
    ds = ff([rgb, rgba], [0, 1], image_size=None, batch_size=None, shuffle=False)
    (a, _), (b, _) = list(ds)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
