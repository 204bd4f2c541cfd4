"""A few fast checks that the package works on an interpreter: run on every supported Python.

``make test-pythons`` (tox environments ``py310-smoke``, ``py312-smoke``, ``py313-smoke``)
runs this file on each Python other than the one of ``.venv``; the full suite runs on
that one.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

SPEC = {"stages": [{"filters": 8, "pool": "max"}, 16], "head": {"pooling": "avg"}}


def test_import_reports_version_and_public_names():
    import keras_cnnkit as ck

    print(f"Python {sys.version.split()[0]}, keras-cnnkit {ck.__version__}")
    assert ck.__version__.count(".") >= 2
    for name in ck.__all__:
        assert getattr(ck, name) is not None, name


def test_conv_stack_builds_and_fits_one_step():
    import keras_cnnkit as ck

    model = ck.conv_stack(SPEC, input_shape=(16, 16, 3), num_classes=3)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    y = np.arange(8) % 3
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    assert np.isfinite(history.history["loss"][0])


def test_save_load_roundtrip_gives_identical_scores(tmp_path):
    import keras_cnnkit as ck

    model = ck.conv_stack(SPEC, input_shape=(16, 16, 3), num_classes=3)
    x = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    path = tmp_path / "model.keras"
    ck.io.save(model, path)
    loaded, _ = ck.io.load(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


@pytest.mark.tensorflow("pipelines are tf.data datasets")
def test_pipeline_from_arrays_batches_images():
    from keras_cnnkit.data import from_arrays

    x = np.random.default_rng(2).integers(0, 256, (10, 12, 12, 3), dtype=np.uint8)
    ds = from_arrays(x, np.arange(10) % 2, batch_size=4, shuffle=False)
    images, labels = next(iter(ds))
    assert tuple(images.shape) == (4, 12, 12, 3)
    assert labels.numpy().tolist() == [0, 1, 0, 1]
    np.testing.assert_array_equal(images.numpy(), x[:4])
