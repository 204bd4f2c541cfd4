import json
import subprocess

import numpy as np
import pytest
from _training_helpers import (
    cnnkit_command,
    make_arrays,
    run_cli,
    write_config,
    write_folder,
    write_npz,
)
from PIL import Image

from keras_cnnkit import io as ckio
from keras_cnnkit.errors import ConfigError, DataError
from keras_cnnkit.training import train
from keras_cnnkit.training.config import load_config

pytestmark = pytest.mark.tensorflow("image folders are read through the tf.data pipeline")


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """One run trained through `cnnkit train` on a folder of real PNG files."""
    root = tmp_path_factory.mktemp("folder_run")
    data = write_folder(root / "images")
    config = write_config(root / "run.toml", str(data), str(root / "out"))
    code = run_cli(["train", str(config), "--set", "training.epochs=3", "-q"])
    return root, code


def test_train_writes_every_output(folder_run, capsys):
    root, code = folder_run
    assert code == 0
    out = root / "out"
    for name in ("model.keras", "best.keras", "history.csv", "config.toml", "summary.json"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2, 3]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    assert (out / "history.csv").read_text().splitlines()[0].startswith("epoch,")
    with Image.open(out / "curves.png") as img:
        assert img.format == "PNG"
    model, meta = ckio.load(out / "model.keras")
    assert meta.class_names == ["cat", "dog", "eel"]
    assert meta.training["config"]["training"]["epochs"] == 3
    best, best_meta = ckio.load(out / "best.keras")
    assert best_meta.training["epoch"] in (1, 2, 3)
    # The resolved configuration reproduces the run.
    resolved = load_config(out / "config.toml")
    assert resolved.training["epochs"] == 3 and resolved.model["spec"]["stages"] == [4]


def test_folder_run_records_how_files_became_model_input(folder_run):
    """predict, evaluate and export read files as the run did, from the model's metadata."""
    root, code = folder_run
    assert code == 0
    for name in ("model.keras", "best.keras"):
        _, meta = ckio.load(root / "out" / name)
        recorded = meta.input_preprocessing
        assert recorded is not None, name
        assert tuple(recorded["image_size"]) == (8, 8), recorded  # write_folder's PNGs
        assert recorded["color_mode"] == "rgb", recorded


def test_finished_run_is_not_overwritten(folder_run):
    root, _ = folder_run
    with pytest.raises(ConfigError, match="already holds a finished run"):
        train(root / "run.toml")


def test_evaluate_and_predict(folder_run, capsys, tmp_path):
    root, _ = folder_run
    model = str(root / "out" / "model.keras")
    capsys.readouterr()
    png = tmp_path / "confusion.png"
    assert run_cli(["evaluate", model, str(root / "images"), "--json", "--plot", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["class_names"] == ["cat", "dog", "eel"]
    assert np.sum(report["confusion"]) == 36 and 0 <= report["accuracy"] <= 1
    assert report["top_k"] == 3 and report["top_k_accuracy"] == pytest.approx(1.0)
    with Image.open(png) as img:
        assert img.format == "PNG"
    assert run_cli(["evaluate", model, str(root / "images")]) == 0
    assert "confusion matrix" in capsys.readouterr().out
    image = root / "images" / "dog" / "001.png"
    assert run_cli(["predict", model, str(image), str(root / "images" / "eel"), "--jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1 + 12 and lines[0]["file"] == str(image)
    assert {p["class"] for p in lines[0]["top"]} == {"cat", "dog", "eel"}
    assert sum(p["score"] for p in lines[0]["top"]) == pytest.approx(1.0, abs=1e-4)
    assert run_cli(["predict", model, str(image), "--top-k", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"{image}  ")


def test_evaluate_streams_the_folder_and_skips_bad_files_when_asked(folder_run, capsys, tmp_path):
    import shutil

    root, _ = folder_run
    model_path = str(root / "out" / "model.keras")
    data = tmp_path / "images"
    shutil.copytree(root / "images", data)
    # The accuracy computed independently: PIL decode, the model, argmax.
    model, meta = ckio.load(model_path)
    x, y = [], []
    for label, name in enumerate(meta.class_names):
        for f in sorted((data / name).iterdir()):
            x.append(np.asarray(Image.open(f).convert("RGB")))
            y.append(label)
    expected = float(np.mean(model.predict(np.stack(x), verbose=0).argmax(-1) == np.array(y)))

    (data / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    capsys.readouterr()
    code = run_cli(["evaluate", model_path, str(data), "--json", "--batch-size", "5"])
    assert code in (1, 2)
    assert "broken.png" in capsys.readouterr().err
    code = run_cli(
        ["evaluate", model_path, str(data), "--json", "--batch-size", "5", "--skip-bad-files"]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "broken.png" in captured.err
    report = json.loads(captured.out)
    assert np.sum(report["confusion"]) == 36
    assert report["accuracy"] == pytest.approx(expected)


def test_user_mistakes_exit_2_without_traceback(tmp_path, capsys):
    config = write_config(tmp_path / "run.toml", str(tmp_path / "nope"), str(tmp_path / "out"))
    assert run_cli(["train", str(config), "--set", "training.epoch=3"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'epochs'" in err and "Traceback" not in err
    assert run_cli(["train", str(config)]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert run_cli(["evaluate", str(tmp_path / "m.keras"), str(tmp_path)]) == 2
    assert f"model file not found: {tmp_path / 'm.keras'}" in capsys.readouterr().err
    assert run_cli(["train", str(config), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    with pytest.raises(DataError, match="data.train: data folder not found"):
        train(config)


def test_npz_data_with_validation_file_and_subprocess_exit_code(tmp_path):
    train_npz = write_npz(tmp_path / "train.npz")
    val_npz = write_npz(tmp_path / "val.npz", n=30, seed=5)
    config = write_config(tmp_path / "run.toml", str(train_npz), str(tmp_path / "out"), extra="")
    result = train(
        config,
        [
            f'data.validation="{val_npz}"',
            "training.epochs=1",
            "training.optimizer=sgd",
            "training.precision=mixed_bfloat16",
        ],
        verbose=0,
    )
    assert len(result.history) == 1 and "val_accuracy" in result.history[0]
    assert "trained 1 epochs" in result.summary()
    model, meta = ckio.load(result.files["model"])
    assert meta.class_names == ["class_0", "class_1", "class_2"]
    assert meta.training["precision"] == "mixed_bfloat16"
    # Trained in mixed precision, the saved model still predicts float32 scores.
    probs = model.predict(np.load(val_npz)["x"][:4], verbose=0)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(-1), 1.0, atol=1e-3)
    # A real `cnnkit` process: a user's mistake exits 2 with one line, no traceback.
    proc = subprocess.run(
        cnnkit_command("train", str(config), "--set", "model.spec.stages=[4]"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown key model.spec.stages; did you mean 'spec'?" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_backbone_by_name_starts_from_a_local_weights_file(tmp_path):
    from keras_cnnkit.backbones import backbone_model, build_classifier, save_backbone_weights

    source = build_classifier(
        "mobilenet_v3_small", 3, (32, 32, 3), weights=None, freeze_backbone=False
    )
    rng = np.random.default_rng(3)
    for v in backbone_model(source).non_trainable_weights:  # BatchNorm moving statistics
        v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype("float32"))
    weights = save_backbone_weights(source, tmp_path / "backbone.weights.h5")
    x, y = make_arrays(48, size=32)
    np.savez(tmp_path / "d.npz", x=x, y=y, class_names=np.array(["a", "b", "c"]))
    config = tmp_path / "run.toml"
    config.write_text(
        f"""
[data]
train = "{tmp_path / "d.npz"}"
validation_split = 0.25

[model]
backbone = "mobilenet_v3_small"
weights = "{weights}"

[training]
epochs = 1
batch_size = 12
precision = "float32"

[output]
dir = "{tmp_path / "out"}"
"""
    )
    result = train(config)
    assert [e["epoch"] for e in result.history] == [1]
    # The backbone was loaded from the file, and its BatchNorm statistics stayed frozen
    # (inference mode) through training.
    expected = [np.asarray(v) for v in backbone_model(source).non_trainable_weights]
    got = [np.asarray(v) for v in backbone_model(result.model).non_trainable_weights]
    assert len(got) == len(expected) > 0
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    loaded, meta = ckio.load(tmp_path / "out" / "model.keras")
    assert meta.class_names == ["a", "b", "c"]
    assert meta.training["config"]["model"]["backbone"] == "mobilenet_v3_small"
    np.testing.assert_allclose(
        loaded.predict(x[:4], verbose=0), result.model.predict(x[:4], verbose=0), atol=1e-6
    )
