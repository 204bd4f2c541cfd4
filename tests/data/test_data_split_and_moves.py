"""One split for folders, file lists, arrays and .npz; the old import paths still work."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from keras_cnnkit._deprecation import KerasCnnkitDeprecationWarning
from keras_cnnkit.data import (
    from_arrays,
    from_directory,
    from_files,
    load_image_folder,
    split_indices,
)

pytestmark = pytest.mark.tensorflow("tf.data pipelines")


def test_arrays_npz_and_the_pipeline_split_alike(tmp_path):
    from keras_cnnkit.training._data import load_data

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 4, 4, 3), dtype=np.uint8)
    y = np.arange(40) % 4
    np.savez(tmp_path / "d.npz", x=x, y=y)
    _, val = from_arrays(x, y, validation_split=0.25, subset="both", seed=3)
    data = load_data({"train": str(tmp_path / "d.npz"), "validation_split": 0.25}, seed=3)
    x_val = data.arrays[2]
    np.testing.assert_array_equal(x_val, x[val.indices])
    train_idx, val_idx = split_indices([f"x[{i}]" for i in range(40)], 0.25, seed=3)
    assert val_idx.tolist() == val.indices and len(train_idx) + len(val_idx) == 40


def test_folder_file_list_and_in_memory_loader_split_alike(image_tree, monkeypatch):
    _, val = from_directory(image_tree, image_size=8, validation_split=0.3, subset="both", seed=5)
    data = load_image_folder(image_tree, image_size=(8, 8))
    _, data_val = data.split(0.3, seed=5)
    assert list(data_val.paths) == val.file_paths
    # A file list splits by the paths as given: relative ones, so that the split (and this
    # test) does not depend on where the temporary folder happens to be.
    monkeypatch.chdir(image_tree.parent)
    paths = sorted(str(p.relative_to(image_tree.parent)) for p in image_tree.glob("*/*"))
    _, files_val = from_files(
        paths, image_size=8, validation_split=0.3, subset="both", seed=5, shuffle=False
    )
    keys = [p for p in paths]
    assert files_val.file_paths == [paths[i] for i in split_indices(keys, 0.3, seed=5)[1]]
    _, by_count = data.split(4, seed=5)
    assert len(by_count.paths) == 4


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("keras_cnnkit.preprocessing", "from_directory"),
        ("keras_cnnkit.preprocessing", "ImagePreprocessing"),
        ("keras_cnnkit.preprocessing.pipeline", "from_files"),
        ("keras_cnnkit.preprocessing.decode", "inspect_image"),
        ("keras_cnnkit.datasets", "load_image_folder"),
        ("keras_cnnkit.datasets.image_folder", "IMAGE_EXTENSIONS"),
    ],
)
def test_old_import_paths_warn_and_resolve(module, name):
    import keras_cnnkit.data as data

    with pytest.warns(KerasCnnkitDeprecationWarning, match=f"keras_cnnkit.data.{name}"):
        value = getattr(importlib.import_module(module), name)
    assert value is getattr(data, name)
