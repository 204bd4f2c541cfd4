"""Sources (folders, files, arrays), steps, determinism and the validation split."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from keras_cnnkit._deprecation import KerasCnnkitDeprecationWarning
from keras_cnnkit.data import from_arrays, from_directory, from_files, in_validation
from keras_cnnkit.errors import DataError, SpecError

pytestmark = pytest.mark.tensorflow("tf.data pipelines and tf.image resizing")


def _collect(ds):
    xs, ys = [], []
    for x, y in ds:
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def test_from_directory_infers_sorted_classes(image_tree):
    ds = from_directory(image_tree, image_size=(16, 12), batch_size=5, shuffle=False)
    assert ds.class_names == ["cat", "dog"]
    x, y = _collect(ds)
    assert x.shape == (12, 16, 12, 3) and x.dtype == np.uint8
    assert y.tolist() == [0] * 6 + [1] * 6
    assert len(ds.file_paths) == 12 and ds.file_paths[0].endswith("cat/0.jpg")
    assert len(ds.report) == 0


def test_from_directory_given_class_names_set_labels(image_tree):
    ds = from_directory(image_tree, class_names=["dog", "cat"], image_size=8, shuffle=False)
    _, y = _collect(ds)
    assert y.tolist() == [0] * 6 + [1] * 6
    assert ds.file_paths[0].endswith("dog/0.jpg")
    with pytest.raises(DataError, match="bird"):
        from_directory(image_tree, class_names=["cat", "bird"])


def test_from_directory_unlabeled(image_tree):
    ds = from_directory(image_tree, labels=None, image_size=8, batch_size=4)
    batch = next(iter(ds))
    assert not isinstance(batch, tuple) and tuple(batch.shape) == (4, 8, 8, 3)
    assert sum(int(b.shape[0]) for b in ds) == 12


def test_empty_class_folder_and_empty_root(tmp_path, image_tree):
    (image_tree / "empty").mkdir()
    with pytest.raises(DataError, match="empty.*contains no images"):
        from_directory(image_tree)
    ds = from_directory(image_tree, on_error="skip", image_size=8)
    assert ds.class_names == ["cat", "dog", "empty"]
    assert ds.report.reason(str(image_tree / "empty")) == "class folder contains no images"
    (tmp_path / "root").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        from_directory(tmp_path / "root")
    (tmp_path / "root" / "a").mkdir()
    with pytest.raises(DataError, match="no images"):
        from_directory(tmp_path / "root", on_error="skip")
    with pytest.raises(DataError, match="not a folder"):
        from_directory(tmp_path / "missing")


def test_from_files_labels_and_mismatch(image_tree):
    paths = sorted(image_tree.glob("*/*"))
    with pytest.raises(DataError, match="12 paths but 11 labels"):
        from_files(paths, [0] * 11)
    with pytest.raises(DataError, match="paths is empty"):
        from_files([], [])
    with pytest.raises(DataError, match="out of range"):
        from_files(paths, [2] * 12, class_names=["a", "b"])
    ds = from_files(paths, [i % 3 for i in range(12)], label_mode="categorical", image_size=8)
    x, y = next(iter(ds))
    assert tuple(y.shape) == (12, 3) and float(np.asarray(y).sum()) == 12.0


def test_from_arrays_cifar_like():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    y = (np.arange(20) % 10).reshape(-1, 1)  # keras.datasets shape
    ds = from_arrays(x, y, batch_size=8, shuffle=False)
    xs, ys = _collect(ds)
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y[:, 0])
    small = from_arrays(x, y, image_size=16, color_mode="grayscale", batch_size=None)
    image, _ = next(iter(small))
    assert tuple(image.shape) == (16, 16, 1) and image.dtype.name == "uint8"


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((4, 8, 8, 3, 1), "uint8"), "rank 5"),
        (np.zeros((4, 8), "uint8"), "got rank 2 shape"),
        (np.zeros((4, 8, 8, 3), bool), "dtype bool"),
        (np.array([["a"]] * 4), "dtype <U1"),
        (np.zeros((4, 8, 8, 5), "uint8"), "1 or 3 channels"),
        (np.full((4, 8, 8, 3), 300, "int64"), "0..255"),
    ],
)
def test_from_arrays_bad_arrays(x, match):
    with pytest.raises(DataError, match=match):
        from_arrays(x, np.zeros(len(x), "int64"))


def test_from_arrays_nan_and_label_mismatch():
    x = np.zeros((5, 4, 4, 3), "float32")
    x[2, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match=r"NaN .* x\[2\]"):
        from_arrays(x, np.zeros(5, "int64"))
    ds = from_arrays(x, np.arange(5), on_error="skip", batch_size=None, shuffle=False)
    assert ds.report.paths == ["x[2]"]
    assert [int(y) for _, y in ds] == [0, 1, 3, 4]
    with pytest.raises(DataError, match="5 images in x but 4 labels"):
        from_arrays(x, np.zeros(4, "int64"))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("stretch", (0, 255)), ("crop", (255, 255)), ("pad", (0, 255))],
)
def test_resize_modes(tmp_path, mode, expected):
    # 20x10 image: left half black, right half white; middle of the top row is white.
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, 10:] = 255
    path = tmp_path / "half.png"
    Image.fromarray(arr).save(path)
    ds = from_files([path], [0], image_size=10, resize_mode=mode, interpolation="nearest")
    x, _ = next(iter(ds))
    x = np.asarray(x)[0]
    assert x.shape == (10, 10, 3)
    if mode == "crop":  # the centred 10x10 window straddles the edge at column 5
        assert x[5, 0, 0] == 0 and x[5, 9, 0] == 255
    elif mode == "pad":  # padded to 20x20 then halved: top and bottom rows are padding
        assert x[0, 7, 0] == 0 and x[5, 7, 0] == 255 and x[5, 2, 0] == 0
    else:
        assert (x[5, 0, 0], x[5, 9, 0]) == expected


def test_center_crop(tmp_path):
    arr = np.zeros((20, 20, 3), np.uint8)
    arr[5:15, 5:15] = 255  # white centre
    Image.fromarray(arr).save(tmp_path / "c.png")
    ds = from_files([tmp_path / "c.png"], [0], image_size=10, center_crop=0.5)
    x, _ = next(iter(ds))
    assert np.asarray(x).min() == 255  # only the centre is kept


def test_grayscale_out_of_every_mode(tmp_path, writers):
    writers.rgb(tmp_path / "a.jpg")
    Image.new("CMYK", (9, 9)).save(tmp_path / "b.jpg")
    Image.new("P", (9, 9)).save(tmp_path / "c.gif")
    paths = [tmp_path / n for n in ("a.jpg", "b.jpg", "c.gif")]
    x, _ = next(iter(from_files(paths, [0, 1, 2], color_mode="grayscale", image_size=6)))
    assert tuple(x.shape) == (3, 6, 6, 1)


def test_normalization_presets_and_dataset_stats_still_work_with_a_warning(image_tree):
    raw = from_directory(image_tree, image_size=8, shuffle=False, batch_size=12)
    x_raw, _ = next(iter(raw))
    x_raw = np.asarray(x_raw, "float32")
    with pytest.warns(KerasCnnkitDeprecationWarning, match="normalize argument"):
        tf_ = from_directory(image_tree, image_size=8, shuffle=False, batch_size=12, normalize="tf")
    x_tf, _ = next(iter(tf_))
    np.testing.assert_allclose(np.asarray(x_tf), x_raw / 127.5 - 1.0, atol=1e-5)
    with pytest.warns(KerasCnnkitDeprecationWarning):
        caffe = from_directory(
            image_tree, image_size=8, shuffle=False, batch_size=12, normalize="caffe"
        )
    x_c, _ = next(iter(caffe))
    np.testing.assert_allclose(np.asarray(x_c)[..., 0], x_raw[..., 2] - 103.939, atol=1e-3)
    with pytest.warns(KerasCnnkitDeprecationWarning):
        ds = from_directory(
            image_tree, image_size=8, shuffle=False, batch_size=12, normalize="dataset"
        )
    x_d, _ = next(iter(ds))
    x_d = np.asarray(x_d)
    np.testing.assert_allclose(x_d.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(x_d.std(axis=(0, 1, 2)), 1.0, atol=1e-3)
    with pytest.raises(SpecError, match="unknown normalize preset"):
        from_directory(image_tree, normalize="imagenet")


@pytest.mark.parametrize("size", [16, 64])  # 64: upsampling, augmented before the resize
def test_seeded_shuffle_and_augmentation_are_reproducible(image_tree, size):
    # several batches, decoded and augmented in parallel
    kwargs = dict(image_size=size, batch_size=4, seed=7, augment={"flip": True, "translate": 0.2})
    ds = from_directory(image_tree, **kwargs)
    a, a_epoch2 = _collect(ds), _collect(ds)
    ds_b = from_directory(image_tree, **kwargs)
    b, b_epoch2 = _collect(ds_b), _collect(ds_b)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a_epoch2[0], b_epoch2[0])
    assert not np.array_equal(a[0], a_epoch2[0])  # each epoch reshuffles and redraws
    plain = _collect(from_directory(image_tree, image_size=size, batch_size=4, seed=7))
    np.testing.assert_array_equal(plain[1], a[1])  # same seed, same order
    assert not np.array_equal(plain[0], a[0])  # augmentation changed the pixels
    assert a[0].dtype == np.float32
    other = _collect(from_directory(image_tree, **dict(kwargs, seed=8)))
    assert not np.array_equal(other[0], a[0])


def test_every_augmentation_runs_in_tf_data(image_tree):
    augment = {
        "flip": "horizontal_and_vertical",
        "translate": (0.1, 0.2),
        "rotate": 0.1,
        "zoom": 0.1,
        "contrast": 0.2,
        "erase": 1.0,
        "cutmix": 1.0,
    }
    ds = from_directory(image_tree, image_size=16, batch_size=6, seed=1, augment=augment)
    x, y = next(iter(ds))
    assert tuple(x.shape) == (6, 16, 16, 3) and tuple(y.shape) == (6, 2)
    np.testing.assert_allclose(np.asarray(y).sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(SpecError, match="unknown augmentation"):
        from_directory(image_tree, augment={"blur": 1})


def test_validation_split_is_stable_and_disjoint(image_tree, writers):
    train, val = from_directory(
        image_tree,
        image_size=8,
        validation_split=0.3,
        subset="both",
        seed=3,
        augment={"flip": True},
    )
    again = from_directory(
        image_tree, image_size=8, validation_split=0.3, subset="validation", seed=3
    )
    assert val.file_paths == again.file_paths and len(val.file_paths) > 0
    assert set(train.file_paths).isdisjoint(val.file_paths)
    assert len(train.file_paths) + len(val.file_paths) == 12
    # validation is not augmented or shuffled: uint8 pixels in file order
    x, _ = next(iter(val))
    assert x.dtype.name == "uint8"
    # adding files does not move the existing ones
    writers.rgb(image_tree / "cat" / "new.jpg")
    more = from_directory(image_tree, validation_split=0.3, subset="validation", seed=3)
    assert set(val.file_paths) <= set(more.file_paths)
    assert in_validation("cat/0.jpg", 0.3, 3) == (
        str(image_tree / "cat" / "0.jpg") in val.file_paths
    )
    with pytest.raises(SpecError, match="subset"):
        from_directory(image_tree, validation_split=0.3)


@pytest.mark.parametrize("cache", ["memory", "file"])
def test_cache(image_tree, tmp_path, cache):
    target = "memory" if cache == "memory" else str(tmp_path / "cache" / "pipe")
    if cache == "file":
        (tmp_path / "cache").mkdir()
    ds = from_directory(image_tree, image_size=8, cache=target, seed=0, batch_size=12)
    first = _collect(ds)
    second = _collect(ds)
    assert sorted(first[1].tolist()) == sorted(second[1].tolist())
    assert sorted(map(bytes, first[0])) == sorted(map(bytes, second[0]))
    if cache == "file":
        assert list((tmp_path / "cache").glob("pipe*"))


def test_mixup_gives_soft_labels(image_tree):
    ds = from_directory(image_tree, image_size=8, batch_size=6, seed=2, augment={"mixup": 0.4})
    _, y = next(iter(ds))
    y = np.asarray(y)
    assert y.shape == (6, 2)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert ((y > 0.01) & (y < 0.99)).any()  # mixed pairs carry both labels


def test_file_broken_after_the_check_is_reported_during_iteration(tmp_path, writers):
    good = writers.rgb(tmp_path / "good.png")
    later = tmp_path / "later.gif"
    Image.new("P", (9, 9)).save(later)
    ds = from_files([good, later], [0, 1], image_size=8, on_error="skip", batch_size=None)
    assert len(ds.report) == 0
    later.write_bytes(b"GIF89a broken")  # replaced between the check and the epoch
    labels = [int(y) for _, y in ds]
    assert labels == [0]
    assert ds.report.paths == [str(later)]
