"""``cnnkit predict`` and ``cnnkit evaluate`` read images through the data layer."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_cnnkit import io as ckio
from keras_cnnkit.data import DataConfig, from_files

pytestmark = pytest.mark.tensorflow("tf.data pipelines")


def _cli(argv) -> int:
    from keras_cnnkit.cli.main import main

    return main([str(a) for a in argv])


def _model(tmp_path, settings=None):
    """A 2-class model on 16x16 RGB input; records ``settings`` as its input preprocessing."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    metadata = {"class_names": ["cat", "dog"]}
    if settings:
        metadata["input_preprocessing"] = DataConfig(
            image_size=(16, 16), **settings
        ).input_preprocessing()
    path = tmp_path / "m.keras"
    ckio.save(model, path, metadata=metadata)
    return model, path


def _jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_predict_scores_equal_the_pipeline_scores(tmp_path, writers, capsys):
    settings = {"resize_mode": "crop", "interpolation": "bicubic", "antialias": True}
    model, path = _model(tmp_path, settings)
    files = [
        writers.rgb(tmp_path / "a.jpg", size=(128, 128), seed=1),
        writers.rgb(tmp_path / "b.png", size=(40, 25), seed=2),
        writers.rgb(tmp_path / "c.png", size=(9, 7), seed=3),
    ]
    assert _cli(["predict", path, *files, "--jsonl", "--top-k", "2"]) == 0
    rows = _jsonl(capsys.readouterr().out)
    assert [r["file"] for r in rows] == [str(f) for f in files]
    loaded = ckio.load(path)
    ds = from_files(files, data_config=loaded, batch_size=8, shuffle=False)
    expected = np.asarray(model.predict(next(iter(ds)), verbose=0))
    for row, probs in zip(rows, expected):
        scores = {p["class"]: p["score"] for p in row["top"]}
        np.testing.assert_allclose([scores["cat"], scores["dog"]], probs, atol=2e-6)


def test_predict_skip_bad_files_prints_the_good_ones(tmp_path, writers, capsys):
    _, path = _model(tmp_path)
    good = writers.rgb(tmp_path / "good.png")
    bad = writers.png_bad_zlib(tmp_path / "bad.png")
    assert _cli(["predict", path, good, bad, "--jsonl"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err
    assert _cli(["predict", path, good, bad, "--jsonl", "--skip-bad-files"]) == 0
    captured = capsys.readouterr()
    assert [r["file"] for r in _jsonl(captured.out)] == [str(good)]
    assert f"skipped {bad}" in captured.err


def test_evaluate_skip_bad_files_with_a_corrupt_png(tmp_path, writers, capsys):
    _, path = _model(tmp_path)
    root = tmp_path / "data"
    for i, name in enumerate(("cat", "dog")):
        for j in range(3):
            writers.rgb(root / name / f"{j}.png", size=(20, 20), seed=10 * i + j)
    bad = writers.png_short_idat(root / "dog" / "short.png")
    assert _cli(["evaluate", path, root, "--json"]) == 2
    assert str(bad) in capsys.readouterr().err
    assert _cli(["evaluate", path, root, "--json", "--skip-bad-files"]) == 0
    captured = capsys.readouterr()
    confusion = np.asarray(json.loads(captured.out)["confusion"])
    assert confusion.sum() == 6 and confusion.sum(axis=1).tolist() == [3, 3]
    assert f"skipped {bad}" in captured.err


def test_evaluate_reads_images_as_the_model_recorded(tmp_path, writers, capsys):
    settings = {"resize_mode": "pad", "interpolation": "nearest"}
    model, path = _model(tmp_path, settings)
    root = tmp_path / "data"
    for i, name in enumerate(("cat", "dog")):
        for j in range(3):
            writers.rgb(root / name / f"{j}.jpg", size=(60 + 10 * j, 30), seed=10 * i + j)
    assert _cli(["evaluate", path, root, "--json"]) == 0
    loss = json.loads(capsys.readouterr().out)["loss"]
    from keras_cnnkit.data import from_directory

    ds = from_directory(root, data_config=ckio.load(path), batch_size=8, shuffle=False)
    images, labels = next(iter(ds))
    probs = np.asarray(model.predict(images, verbose=0), np.float64)
    expected = -np.mean(np.log(probs[np.arange(len(labels)), np.asarray(labels)]))
    assert abs(loss - expected) < 1e-5
    plain = from_directory(root, image_size=16, batch_size=8, shuffle=False)
    other = np.asarray(model.predict(next(iter(plain))[0], verbose=0), np.float64)
    assert np.abs(other - probs).max() > 1e-3  # the recorded settings made a difference
