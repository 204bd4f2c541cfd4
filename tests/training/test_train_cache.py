"""cnnkit train decodes a small image folder once into memory, with the streamed pixels."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from _training_helpers import write_config
from PIL import Image

from keras_cnnkit.errors import ConfigError
from keras_cnnkit.training import train
from keras_cnnkit.training._data import load_data, memory_limit
from keras_cnnkit.training.config import load_config

pytestmark = pytest.mark.tensorflow("image folders are read through the tf.data pipeline")


def _jpeg_folder(root, per_class=9, names=("ant", "bee", "cow"), size=(20, 14), seed=0):
    """Real JPEG files of noise under ``root/<class>/`` (stored size differs from the model's)."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size[0], size[1], 3)).astype("uint8")
            pixels[..., c] = 255 - pixels[..., c] // 4  # class-coloured
            Image.fromarray(pixels).save(root / name / f"{i:02d}.jpg", quality=90)
    return root


def _streamed(ds):
    xs, ys = zip(*ds.as_numpy_iterator())
    return np.concatenate(xs), np.concatenate(ys)


def test_memory_cache_gives_the_streamed_pixels_labels_and_split(tmp_path):
    root = _jpeg_folder(tmp_path / "images")
    data = {"train": str(root), "validation_split": 0.25, "image_size": [12, 10]}
    memory = load_data({**data, "cache": "memory"}, batch_size=5, seed=4, shuffle=False)
    stream = load_data({**data, "cache": "none"}, batch_size=5, seed=4, shuffle=False)
    assert memory.streams is None and stream.arrays is None
    x, y, x_val, y_val = memory.arrays
    assert x.dtype == np.uint8 and x.shape[1:] == (12, 10, 3)
    sx, sy = _streamed(stream.streams[0])
    vx, vy = _streamed(stream.streams[1])
    np.testing.assert_array_equal(x, sx)
    np.testing.assert_array_equal(y, sy)
    np.testing.assert_array_equal(x_val, vx)
    np.testing.assert_array_equal(y_val, vy)
    assert 0 < len(x_val) < len(x) + len(x_val) == 27
    assert memory.num_train == stream.num_train == len(x)
    assert memory.class_names == stream.class_names == ["ant", "bee", "cow"]
    assert memory.input_shape == stream.input_shape == (12, 10, 3)
    assert memory.input_preprocessing == stream.input_preprocessing


def test_validation_folder_is_decoded_into_memory_too(tmp_path):
    train_root = _jpeg_folder(tmp_path / "train")
    val_root = _jpeg_folder(tmp_path / "val", per_class=3, seed=9)
    data = {"train": str(train_root), "validation": str(val_root), "image_size": [16, 16]}
    memory = load_data(data, batch_size=4, seed=0, shuffle=False)  # "auto": fits
    stream = load_data({**data, "cache": "none"}, batch_size=4, seed=0, shuffle=False)
    x_val, y_val = memory.arrays[2:]
    vx, vy = _streamed(stream.streams[1])
    assert len(x_val) == 9
    np.testing.assert_array_equal(x_val, vx)
    np.testing.assert_array_equal(y_val, vy)


def test_a_folder_over_the_limit_streams_from_the_files(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="keras_cnnkit")
    root = _jpeg_folder(tmp_path / "images")
    data = {"train": str(root), "image_size": [12, 10]}
    # 27 images of 12 x 10 x 3 bytes = 9,720 bytes; a limit of about 1 KiB.
    small = load_data({**data, "cache_limit_gib": 1e-6}, batch_size=4, seed=0)
    assert small.arrays is None and small.streams is not None
    assert "over the memory cache limit" in caplog.text
    fits = load_data({**data, "cache_limit_gib": 1e-5}, batch_size=4, seed=0)  # about 10.5 KiB
    assert fits.arrays is not None and fits.streams is None
    forced = load_data({**data, "cache": "memory", "cache_limit_gib": 1e-6}, batch_size=4, seed=0)
    assert forced.arrays is not None


def test_the_default_limit_is_a_quarter_of_the_memory():
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_limit() == total // 4
    assert memory_limit(1.5) == 3 * 2**29


def test_seeded_order_of_the_cached_arrays(tmp_path):
    root = _jpeg_folder(tmp_path / "images")
    data = {"train": str(root), "image_size": [8, 8], "cache": "memory"}
    first = load_data(data, batch_size=4, seed=3).arrays
    again = load_data(data, batch_size=4, seed=3).arrays
    other = load_data(data, batch_size=4, seed=4).arrays
    plain = load_data(data, batch_size=4, seed=3, shuffle=False).arrays
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])
    assert list(plain[1]) == sorted(plain[1])  # files in class order without shuffling
    assert sorted(first[1]) == list(plain[1])


def test_two_cached_runs_with_one_seed_shuffle_alike(tmp_path):
    """The seeded order of the cached arrays and the recipe's seeded shuffling repeat.

    Without augmentation (the random layers run in a parallel map) the shuffled order
    is the run's only randomness after the seeded initialization.
    """
    root = _jpeg_folder(tmp_path / "images", size=(8, 8))
    digests = []
    for name in ("a", "b", "c"):
        config = write_config(tmp_path / f"{name}.toml", str(root), str(tmp_path / name))
        sets = ["training.epochs=2", "training.augment=false", 'data.cache="memory"']
        seed = ["training.seed=1"] if name == "c" else []
        digests.append(train(config, [*sets, *seed], verbose=0).weights_sha256)
    assert digests[0] == digests[1]
    assert digests[2] != digests[0]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('data.cache="ram"', "data.cache = 'ram' is not one of 'auto', 'memory', 'none'"),
        ("data.cache_limit_gib=-2", "data.cache_limit_gib must be 0"),
        ('data.cache_limit_gib="2GB"', "data.cache_limit_gib must be a number, got str '2GB'"),
        ("data.cache=true", "data.cache must be a string, got bool True"),
    ],
)
def test_cache_options_are_checked(override, message):
    base = {"data": {"train": "images"}, "model": {"spec": {"stages": [4]}}, "output": {"dir": "o"}}
    with pytest.raises(ConfigError) as info:
        load_config(base, [override])
    assert message in str(info.value)


def test_cache_options_are_recorded(tmp_path):
    cfg = load_config(
        {"data": {"train": "images"}, "model": {"spec": {"stages": [4]}}, "output": {"dir": "o"}}
    )
    assert (cfg.data["cache"], cfg.data["cache_limit_gib"]) == ("auto", 0.0)
    assert 'cache = "auto"' in cfg.to_toml() and "cache_limit_gib = 0.0" in cfg.to_toml()
