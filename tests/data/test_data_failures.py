"""The failures the data layer must name: at construction, during iteration, in every mode."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from PIL import Image

from keras_cnnkit.data import (
    data_config,
    from_arrays,
    from_directory,
    from_files,
    list_images,
    load_image_folder,
)
from keras_cnnkit.errors import DataError, ImageDecodeError

pytestmark = pytest.mark.tensorflow("tf.data pipelines")


@pytest.mark.parametrize("kind", ["png_bad_zlib", "png_short_idat"])
def test_corrupt_png_data_is_named_up_front(tmp_path, writers, kind):
    good = writers.rgb(tmp_path / "good.png")
    bad = getattr(writers, kind)(tmp_path / "bad.png")
    with pytest.raises(ImageDecodeError, match="corrupt") as info:
        from_files([good, bad], [0, 1], image_size=8)
    assert str(bad) in str(info.value)
    ds = from_files([good, bad], [0, 1], image_size=8, on_error="skip", batch_size=None)
    assert ds.report.paths == [str(bad)]
    assert [int(y) for _, y in ds] == [0]


def _replace(path, kind):
    if kind == "garbage":
        path.write_bytes(b"this is no longer an image")
    else:  # the same size and name, data that no longer decodes
        data = bytearray(path.read_bytes())
        data[len(data) // 3 :] = b"\xff" * (len(data) - len(data) // 3)
        path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("ext", "kind"),
    [
        ("jpg", "garbage"),
        ("jpg", "damaged"),
        ("png", "garbage"),
        ("png", "damaged"),
        ("bmp", "garbage"),
    ],
)
def test_file_changed_after_the_pipeline_was_built(tmp_path, writers, ext, kind):
    good = writers.rgb(tmp_path / "good.png", seed=1)
    later = writers.rgb(tmp_path / f"later.{ext}", seed=2, fmt={"jpg": "JPEG"}.get(ext))
    raising = from_files([good, later], [0, 1], image_size=8, batch_size=None, shuffle=False)
    skipping = from_files(
        [good, later], [0, 1], image_size=8, batch_size=None, shuffle=False, on_error="skip"
    )
    _replace(later, kind)
    with pytest.raises(ImageDecodeError) as info:
        list(raising)
    assert str(later) in str(info.value)
    assert [int(y) for _, y in skipping] == [0]
    assert skipping.report.paths == [str(later)]


def test_non_utf8_names_are_read_by_their_bytes(tmp_path):
    if sys.platform == "darwin":
        pytest.skip("macOS file systems refuse names that are not UTF-8")
    root = os.fsencode(tmp_path / "tree")
    for cls in (b"caf\xe9", b"tea"):
        os.makedirs(os.path.join(root, cls))
        for name in (b"\xe9t\xe9.png", b"plain.png"):
            Image.new("RGB", (9, 7), (len(cls) * 20, 10, 10)).save(os.path.join(root, cls, name))
    folder = os.fsdecode(root)
    ds = from_directory(folder, image_size=4, batch_size=8, shuffle=False)
    images, labels = next(iter(ds))
    assert images.shape[0] == 4 and labels.numpy().tolist() == [0, 0, 1, 1]
    assert ds.class_names[0] == os.fsdecode(b"caf\xe9")
    assert os.fsdecode(b"\xe9t\xe9.png") in {os.path.basename(p) for p in ds.file_paths}
    data = load_image_folder(folder)
    assert data.x.shape == (4, 7, 9, 3) and data.class_names == tuple(ds.class_names)
    files = from_files(ds.file_paths, image_size=4, batch_size=8, shuffle=False)
    np.testing.assert_array_equal(next(iter(files)).numpy(), images.numpy())


def test_a_symlink_loop_lists_each_image_once(tmp_path):
    root = tmp_path / "tree"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        Image.new("RGB", (5, 5)).save(root / cls / "x.png")
    os.symlink(root, root / "a" / "loop")  # a/loop -> the whole tree, again and again
    assert len(list_images(root / "a", follow_links=True)) == 2
    ds = from_directory(root, follow_links=True, image_size=4, batch_size=None)
    assert len(ds.file_paths) == 3  # a/x.png, a/loop/b/x.png (b once more via the link)...
    assert len(set(map(os.path.realpath, ds.file_paths))) == 2


def test_hidden_files_are_left_out(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("RGB", (5, 5)).save(tmp_path / "a" / "x.png")
    (tmp_path / "a" / "._x.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (tmp_path / ".thumbs").mkdir()
    ds = from_directory(tmp_path, image_size=4)
    assert ds.class_names == ["a"] and len(ds.file_paths) == 1


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        (
            np.zeros((4, 8, 8, 3), "uint8"),
            [0, 1, 2, 5],
            {"class_names": ["a", "b", "c"]},
            "label 5 in y",
        ),
        (np.full((4, 8, 8, 3), 1000.0, "float32"), [0, 0, 0, 0], {}, "float x .* 0..255"),
        (np.full((4, 8, 8, 3), -1.0, "float32"), [0, 0, 0, 0], {}, "float x .* 0..255"),
        (np.zeros((4, 0, 8, 3), "uint8"), [0, 0, 0, 0], {}, "x holds empty images"),
        ([np.zeros((8, 8, 3)), np.zeros((9, 8, 3))], [0, 0], {}, "x is ragged"),
        (np.zeros((2, 8, 8, 3), "uint8"), [[0], [0, 1]], {}, "y is ragged"),
    ],
)
def test_from_arrays_names_the_argument(x, y, kwargs, match):
    with pytest.raises(DataError, match=match):
        from_arrays(x, y, label_mode="categorical", **kwargs)


def test_from_files_without_labels(tmp_path, writers):
    files = [writers.rgb(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    ds = from_files(files, image_size=8, batch_size=3, shuffle=False)
    batch = next(iter(ds))
    assert not isinstance(batch, tuple) and tuple(batch.shape) == (3, 8, 8, 3)


def test_a_model_that_normalizes_refuses_a_normalizing_pipeline(tmp_path, writers, image_tree):
    import keras

    from keras_cnnkit.layers import Normalize

    inputs = keras.Input((16, 16, 3))
    x = Normalize.from_preset("caffe")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    cfg = data_config(model)
    assert cfg.normalizes and cfg.image_size == (16, 16)
    with pytest.raises(DataError, match="normalize twice"):
        from_directory(image_tree, data_config=model, normalize="caffe")
    raw = from_directory(image_tree, data_config=model, batch_size=4)
    images, _ = next(iter(raw))
    assert images.dtype.name == "uint8" and tuple(images.shape[1:]) == (16, 16, 3)


def test_model_fit_over_a_file_changed_mid_run(tmp_path, writers):
    import keras

    files = [writers.rgb(tmp_path / f"{i}.png", seed=i) for i in range(6)]
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    skipping = from_files(files, [0, 1] * 3, image_size=8, batch_size=2, on_error="skip")
    raising = from_files(files, [0, 1] * 3, image_size=8, batch_size=2, seed=0)
    model.fit(skipping, epochs=1, verbose=0)  # the iterator works inside fit
    files[3].write_bytes(b"replaced by something else")
    history = model.fit(skipping, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert skipping.report.paths == [str(files[3])]
    import tensorflow as tf

    # inside fit the TensorFlow error that stops the run carries the library's message
    with pytest.raises(tf.errors.OpError, match="ImageDecodeError") as info:
        model.fit(raising, epochs=1, verbose=0)
    assert str(files[3]) in str(info.value)
