import tarfile

import numpy as np
import pytest
from PIL import Image

from keras_cnnkit import load_image_folder
from keras_cnnkit.data import extract_archive
from keras_cnnkit.datasets import load_digits_canvas
from keras_cnnkit.errors import DataError, ImageDecodeError


def _tree(root, classes=("cat", "dog"), n=3, size=(8, 6)):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png" if i % 2 else root / c / f"{i}.jpg")
    return root


def test_loads_classes_in_sorted_order(tmp_path):
    root = _tree(tmp_path / "data", classes=("zebra", "ant"))
    data = load_image_folder(root)
    assert data.class_names == ("ant", "zebra")
    assert data.x.shape == (6, 8, 6, 3) and data.x.dtype == np.uint8
    assert data.y.tolist() == [0, 0, 0, 1, 1, 1]
    # PNG files round-trip exactly through the real decoder
    png = [i for i, p in enumerate(data.paths) if p.endswith(".png")][0]
    with Image.open(data.paths[png]) as img:
        np.testing.assert_array_equal(data.x[png], np.asarray(img))


def test_options(tmp_path):
    root = _tree(tmp_path / "data", n=4)
    data = load_image_folder(
        root, image_size=(4, 5), classes=["dog"], max_per_class=2, color_mode="grayscale"
    )
    assert data.x.shape == (2, 4, 5, 1) and data.class_names == ("dog",)


def test_split_is_stable_and_disjoint(tmp_path):
    data = load_image_folder(_tree(tmp_path / "data", n=10))
    train, val = data.split(0.25, seed=1)
    again_train, again_val = data.split(0.25, seed=1)
    assert val.paths == again_val.paths and 0 < len(val.paths) < 20
    assert not set(train.paths) & set(val.paths)
    assert len(train.paths) + len(val.paths) == 20
    assert data.split(0.25, seed=2)[1].paths != val.paths
    # a count holds out exactly that many, the same ones on every call
    assert len(data.split(5, seed=1)[1].paths) == 5
    assert data.split(5, seed=1)[1].paths == data.split(5, seed=1)[1].paths


def test_archive(tmp_path):
    root = _tree(tmp_path / "src" / "train")
    archive = tmp_path / "images.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="train")
    data = load_image_folder(archive, subdir="train", cache_dir=tmp_path / "cache")
    assert len(data.y) == 6
    assert extract_archive(archive, tmp_path / "cache") == extract_archive(
        archive, tmp_path / "cache"
    )


def test_errors_name_the_input(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_image_folder(tmp_path / "empty")
    root = _tree(tmp_path / "data")
    (root / "bird").mkdir()
    with pytest.raises(DataError, match="bird has no image files"):
        load_image_folder(root)
    with pytest.raises(DataError, match=r"\['fish'\] not found"):
        load_image_folder(root, classes=["fish"])
    bad = root / "cat" / "broken.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageDecodeError, match="broken.jpg"):
        load_image_folder(root, classes=["cat"])
    bad.unlink()
    Image.new("RGB", (3, 3)).save(root / "cat" / "small.png")
    with pytest.raises(DataError, match="differ in size"):
        load_image_folder(root, classes=["cat"])


def test_digits_canvas_is_centered():
    data = load_digits_canvas(canvas_size=32, digit_size=16)
    assert data.x_train.shape[1:] == (32, 32, 1) and data.x_train.dtype == np.uint8
    assert len(data.x_train) + len(data.x_test) == 1797
    ink = data.x_train.sum(axis=(0, 3))
    assert ink[:8].sum() == 0 and ink[24:].sum() == 0 and ink[:, :8].sum() == 0
    assert ink[8:24, 8:24].sum() > 0 and data.x_train.max() == 255
