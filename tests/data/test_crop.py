"""The random crop augmentation: taken while decoding, seeded, on every route."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_cnnkit.data import (
    DataConfig,
    decode_image,
    from_arrays,
    from_directory,
    from_files,
    make_augmentation,
)
from keras_cnnkit.data._augment import CropSpec, crop_spec, crop_window
from keras_cnnkit.data._decode import decode_window, plan_decode
from keras_cnnkit.errors import ImageDecodeError, SpecError


def _photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients with a little noise: JPEG-friendly, every pixel distinct."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack(
        [127 + 100 * np.sin(0.02 * (c + 1) * xx + 0.015 * yy + seed) for c in range(3)], -1
    )
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg_bytes(pixels: np.ndarray, orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(pixels)
    if orientation is None:
        image.save(buf, "JPEG", quality=92)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(buf, "JPEG", quality=92, exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture()
def photo_tree(tmp_path):
    """Two class folders of 96x128 JPEGs (and one PNG)."""
    root = tmp_path / "photos"
    for i in range(8):
        folder = root / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.jpg").write_bytes(_jpeg_bytes(_photo(96, 128, i)))
    Image.fromarray(_photo(90, 120, 9)).save(root / "a" / "9.png")
    return root


AUGMENT = {"crop": (0.3, 0.9), "flip": True}


def _batches(ds) -> list[np.ndarray]:
    return [np.asarray(x) for x, _ in ds]


# --------------------------------------------------------------------------- output


def test_crop_gives_float_batches_of_the_output_size_on_every_route(photo_tree):
    ds = from_directory(photo_tree, image_size=(32, 40), batch_size=9, seed=0, augment=AUGMENT)
    images, labels = next(iter(ds))
    assert images.shape == (9, 32, 40, 3) and images.dtype == tf.float32
    assert labels.shape == (9,)
    values = images.numpy()
    assert 0.0 <= values.min() and values.max() <= 255.0 and values.std() > 10

    files = from_files(
        ds.file_paths, image_size=24, color_mode="grayscale", batch_size=4, augment=AUGMENT
    )
    assert next(iter(files)).shape == (4, 24, 24, 1)

    x = np.stack([_photo(48, 64, i) for i in range(6)])
    arrays = from_arrays(x, np.arange(6) % 2, batch_size=6, seed=1, augment=AUGMENT)
    crops, _ = next(iter(arrays))
    # without image_size the window is resized back to the arrays' own size
    assert crops.shape == (6, 48, 64, 3) and crops.dtype == tf.float32
    assert not np.array_equal(crops.numpy(), x.astype(np.float32))


def test_validation_subset_is_not_cropped(photo_tree):
    plain = from_directory(photo_tree, image_size=(32, 40), shuffle=False, batch_size=16)
    _, val = from_directory(
        photo_tree,
        image_size=(32, 40),
        batch_size=16,
        seed=0,
        augment=AUGMENT,
        validation_split=0.4,
        subset="both",
    )
    images = next(iter(val))[0].numpy()
    assert images.dtype == np.uint8
    by_path = dict(zip(plain.file_paths, next(iter(plain))[0].numpy()))
    for path, image in zip(val.file_paths, images):
        np.testing.assert_array_equal(image, by_path[path])


def test_with_crop_no_flip_layer_is_made_the_decode_stage_flips():
    layers, mix = make_augmentation({"crop": 0.5, "flip": True, "translate": 0.1}, seed=0)
    assert [type(layer).__name__ for layer in layers] == ["RandomTranslation"]
    assert mix is None


def test_flip_mirrors_the_same_window(photo_tree):
    """With the same seed, crop+flip images are the crop-only images, some mirrored."""
    kw = dict(image_size=(32, 40), batch_size=16, seed=5, shuffle=False)
    crop_only = _batches(from_directory(photo_tree, augment={"crop": (0.3, 0.9)}, **kw))[0]
    flipped = _batches(
        from_directory(photo_tree, augment={"crop": (0.3, 0.9), "flip": True}, **kw)
    )[0]
    same = [np.array_equal(a, b) for a, b in zip(crop_only, flipped)]
    mirrored = [np.array_equal(a[:, ::-1], b) for a, b in zip(crop_only, flipped)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert any(same) and any(mirrored)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_crops_new_crops_every_epoch(photo_tree):
    def build(seed):
        return from_directory(
            photo_tree, image_size=(32, 40), batch_size=4, seed=seed, augment=AUGMENT
        )

    first, again = build(7), build(7)
    epoch1 = _batches(first)
    for a, b in zip(epoch1, _batches(again)):
        np.testing.assert_array_equal(a, b)
    epoch2 = _batches(first)
    assert not all(np.array_equal(a, b) for a, b in zip(epoch1, epoch2))
    other = _batches(build(8))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch1, other))


def test_crop_after_a_memory_cache_draws_new_windows_each_epoch(photo_tree):
    ds = from_directory(
        photo_tree, image_size=(32, 40), batch_size=16, seed=2, shuffle=False,
        augment=AUGMENT, cache="memory",
    )  # fmt: skip
    epoch1, epoch2 = _batches(ds)[0], _batches(ds)[0]
    assert epoch1.shape == (9, 32, 40, 3) and epoch1.dtype == np.float32
    assert not np.array_equal(epoch1, epoch2)


# --------------------------------------------------------------------------- the window


def _full_then_crop(pixels, window, config):
    top, left, h, w = window
    return pixels[top : top + h, left : left + w]


def test_jpeg_window_decodes_the_pixels_of_a_full_decode():
    """Inside the window the pixels are those of a full decode, exactly.

    Only the window's first and last columns may differ, by a few levels: libjpeg's chroma
    upsampling does not see the columns beyond a cropped edge.
    """
    data = tf.constant(_jpeg_bytes(_photo(240, 320)))
    config = DataConfig(image_size=(200, 200))  # no DCT scaling: windows under 400x400
    full = tf.io.decode_jpeg(data, channels=3).numpy()
    windows = [(0, 0, 240, 320), (17, 33, 101, 150), (100, 5, 140, 311), (3, 1, 236, 318)]
    for window in windows:
        got = decode_window(data, plan_decode(data, config), lambda h, w, b=window: b, config)
        got = got.numpy()
        reference = _full_then_crop(full, window, config)
        assert got.shape == reference.shape == (window[2], window[3], 3)
        np.testing.assert_array_equal(got[:, 1:-1], reference[:, 1:-1])
        edges = np.abs(got[:, [0, -1]].astype(int) - reference[:, [0, -1]])
        assert edges.max() <= 8
    whole = decode_window(data, plan_decode(data, config), lambda h, w: (0, 0, h, w), config)
    np.testing.assert_array_equal(whole.numpy(), full)


def test_large_window_uses_the_dct_scale_within_tolerance():
    """A window at least twice the output decodes at 1/2 scale: documented tolerance.

    Resized to the output size, the reduced-scale window and the full-scale window
    differ by at most 4 levels on average (libjpeg's scaled IDCT is a low-pass filter;
    bilinear resizing of the full-scale pixels is not).
    """
    pixels = _photo(240, 320)
    data = tf.constant(_jpeg_bytes(pixels))
    config = DataConfig(image_size=(64, 64))
    window = (8, 24, 200, 260)  # >= 2x but < 4x the output: DCT scale 1/2
    got = decode_window(data, plan_decode(data, config), lambda h, w: window, config).numpy()
    assert got.shape == (100, 130, 3)
    full = tf.io.decode_jpeg(data, channels=3).numpy()
    reference = _full_then_crop(full, window, config)
    size = config.image_size
    a = tf.image.resize(got, size, antialias=True).numpy()
    b = tf.image.resize(reference, size, antialias=True).numpy()
    assert np.abs(a - b).mean() < 4.0
    assert np.abs(a - b).max() < 48.0


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_window_is_placed_on_the_image_as_shown(orientation):
    """EXIF-turned JPEGs: the window of the shown image, as a full decode shows it."""
    data = tf.constant(_jpeg_bytes(_photo(64, 96, orientation), orientation))
    config = DataConfig(image_size=(16, 16))  # windows under 32x32: no DCT scaling
    shown = decode_image(data, DataConfig(image_size=None)).numpy()  # full size, turned
    window = (5, 9, 31, 17)
    got = decode_window(data, plan_decode(data, config), lambda h, w: window, config).numpy()
    reference = _full_then_crop(shown, window, config)
    assert got.shape == reference.shape == (31, 17, 3)
    # the stored window's cut edges (columns, or rows once turned) may differ slightly
    np.testing.assert_array_equal(got[1:-1, 1:-1], reference[1:-1, 1:-1])
    assert np.abs(got.astype(int) - reference).max() <= 8


def test_png_window_is_the_slice_of_the_full_decode(tmp_path):
    pixels = _photo(50, 70)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    data = tf.constant(buf.getvalue())
    config = DataConfig(image_size=(8, 8))
    got = decode_window(data, plan_decode(data, config), lambda h, w: (3, 4, 20, 30), config)
    np.testing.assert_array_equal(got.numpy(), pixels[3:23, 4:34])


def test_crop_window_geometry():
    spec = CropSpec(scale=(0.25, 0.25), ratio=(1.0, 1.0))
    top, left, h, w = (
        int(v) for v in crop_window(100, 100, tf.constant([0.0, 0.0, 1.0, 1.0]), spec)
    )
    assert (h, w) == (50, 50) and (top, left) == (50, 50)  # a quarter, bottom right
    # a window wider than the image is cut to it
    wide = CropSpec(scale=(1.0, 1.0), ratio=(4.0, 4.0))
    top, left, h, w = (int(v) for v in crop_window(40, 60, tf.constant([0.5, 0.5, 0.5, 0.5]), wide))
    assert w == 60 and 0 <= top <= 40 - h
    rng = np.random.default_rng(0)
    for u in rng.random((50, 4)).astype(np.float32):
        top, left, h, w = (int(v) for v in crop_window(30, 70, tf.constant(u), CropSpec()))
        assert 1 <= h and 1 <= w and top + h <= 30 and left + w <= 70 and top >= 0 and left >= 0


# --------------------------------------------------------------------------- bad files


def test_bad_file_is_named_on_the_crop_path(photo_tree, tmp_path):
    bad = photo_tree / "a" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        from_directory(photo_tree, image_size=32, augment=AUGMENT)
    ds = from_directory(photo_tree, image_size=32, augment=AUGMENT, on_error="skip", seed=0)
    assert [item.path for item in ds.report] == [str(bad)]
    assert "broken.jpg" in ds.report.summary()
    assert sum(int(x.shape[0]) for x, _ in ds) == 9


def test_file_damaged_after_the_check_is_named_during_iteration(photo_tree):
    ds = from_directory(photo_tree, image_size=32, batch_size=4, augment=AUGMENT, seed=0)
    skip = from_directory(
        photo_tree, image_size=32, batch_size=4, augment=AUGMENT, seed=0, on_error="skip"
    )
    assert len(skip.report) == 0
    victim = photo_tree / "b" / "0.jpg"
    victim.write_bytes(victim.read_bytes()[:300])
    with pytest.raises(ImageDecodeError, match="0.jpg"):
        for _ in ds:
            pass
    images = np.concatenate([x.numpy() for x, _ in skip])
    assert images.shape == (8, 32, 32, 3)  # the damaged file is left out
    assert [item.path for item in skip.report] == [str(victim)]


def test_file_replaced_by_a_good_image_is_cropped_from_its_new_pixels(photo_tree):
    ds = from_directory(
        photo_tree, image_size=16, batch_size=16, shuffle=False, seed=0,
        augment={"crop": (0.5, 0.5)},
    )  # fmt: skip
    victim = photo_tree / "a" / "1.jpg"
    Image.new("RGB", (60, 40), (250, 10, 10)).save(victim, quality=95)
    images = _batches(ds)[0]
    index = ds.file_paths.index(str(victim))
    np.testing.assert_allclose(images[index].mean(axis=(0, 1)), [250, 10, 10], atol=4)


# --------------------------------------------------------------------------- the spec


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (1.5, "1.5"),
        (-0.2, "-0.2"),
        ((0.9, 0.2), "(0.9, 0.2)"),
        ((0.1, 0.2, 0.3), "(0.1, 0.2, 0.3)"),
        ("big", "'big'"),
        ({"scale": 0.5, "ratios": 1}, "ratios"),
        ({"ratio": (2, 1)}, "(2, 1)"),
        ({"ratio": -3}, "-3"),
        ({"scale": float("nan")}, "nan"),
    ],
)
def test_bad_crop_values_are_named(photo_tree, value, named):
    with pytest.raises(SpecError, match="crop") as info:
        crop_spec({"crop": value})
    assert named in str(info.value)
    with pytest.raises(SpecError):
        from_directory(photo_tree, image_size=32, augment={"crop": value})


def test_crop_spec_forms():
    assert crop_spec({"crop": True}) == CropSpec()
    assert crop_spec({"crop": False}) is None and crop_spec({"flip": True}) is None
    assert crop_spec({"crop": 0.5}).scale == (0.5, 1.0)
    assert crop_spec({"crop": (0.2, 0.4)}).scale == (0.2, 0.4)
    spec = crop_spec({"crop": {"scale": 0.7, "ratio": (1, 2)}})
    assert spec == CropSpec((0.7, 0.7), (1.0, 2.0))


def test_crop_needs_an_image_size(photo_tree):
    with pytest.raises(SpecError, match="image_size"):
        from_directory(photo_tree, image_size=None, augment={"crop": 0.5})


def test_shards_crop_from_the_full_decode(photo_tree, tmp_path):
    from keras_cnnkit.data import from_shards, pack

    pack(photo_tree, tmp_path / "out", progress=False)
    manifest = tmp_path / "out" / "manifest.json"

    def build():
        return from_shards(manifest, image_size=(32, 40), batch_size=16, seed=4, augment=AUGMENT)

    first = np.concatenate(_batches(build()))
    assert first.shape == (9, 32, 40, 3) and first.dtype == np.float32
    np.testing.assert_array_equal(first, np.concatenate(_batches(build())))
    plain = np.concatenate(
        [x.numpy() for x, _ in from_shards(manifest, image_size=(32, 40), batch_size=16, seed=4)]
    )
    assert not np.array_equal(np.sort(first.ravel()), np.sort(plain.astype(np.float32).ravel()))


_BACKEND_SCRIPT = """
import sys
import numpy as np
import keras
from keras_cnnkit.data import from_arrays, from_directory

assert keras.backend.backend() == sys.argv[3], keras.backend.backend()
augment = {"crop": (0.3, 0.9), "flip": True, "translate": 0.1}
files = from_directory(sys.argv[1], image_size=(32, 40), batch_size=16, seed=3, augment=augment)
x = np.stack([np.full((24, 30, 3), 10 * i, np.uint8) for i in range(4)])
arrays = from_arrays(x, [0, 1, 0, 1], batch_size=4, seed=3, augment={"crop": 0.5})
np.savez(sys.argv[2], files=next(iter(files))[0], arrays=next(iter(arrays))[0])
"""


@pytest.mark.tensorflow("the reference pixels come from the TensorFlow backend")
def test_crop_under_jax_gives_the_tensorflow_pixels(photo_tree, tmp_path):
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    out = {}
    for backend in ("tensorflow", "jax"):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        path = tmp_path / f"{backend}.npz"
        proc = subprocess.run(
            [sys.executable, "-c", _BACKEND_SCRIPT, str(photo_tree), str(path), backend],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[backend] = np.load(path)
    for key in ("files", "arrays"):
        assert out["jax"][key].shape == out["tensorflow"][key].shape, key
        np.testing.assert_array_equal(out["jax"][key], out["tensorflow"][key], err_msg=key)
    assert out["tensorflow"]["files"].shape == (9, 32, 40, 3)
