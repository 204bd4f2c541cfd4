import numpy as np
import pytest

from keras_cnnkit.cli.main import main as run_cli
from keras_cnnkit.io import save


@pytest.fixture
def emulator(gcs_server, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    return gcs_server


def test_cli_upload_download(emulator, bucket, tmp_path, capsys):
    src = tmp_path / "model.bin"
    src.write_bytes(np.random.default_rng(0).bytes(300_000))
    uri = f"gs://{bucket}/m/model.bin"
    assert run_cli(["upload", str(src), uri, "--deadline", "5"]) == 0
    out, err = capsys.readouterr()
    assert "uploaded 1 file(s)" in out and uri in out
    assert "100%" in err  # the progress bar, on stderr

    assert run_cli(["upload", str(src), uri, "--deadline", "5"]) == 1
    assert "already exists" in capsys.readouterr().err

    dest = tmp_path / "back.bin"
    assert run_cli(["download", uri, str(dest), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert dest.read_bytes() == src.read_bytes() and err == ""

    assert run_cli(["download", f"gs://{bucket}/nothing", str(tmp_path / "x")]) == 1
    assert "nothing found" in capsys.readouterr().err
    assert run_cli(["upload", str(src), "s3://elsewhere/x"]) == 2
    assert "gs://" in capsys.readouterr().err
    assert run_cli(["upload", str(tmp_path / "missing"), uri]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.tensorflow("SavedModel export")
def test_cli_export(tiny_model, images, tmp_path, capsys):
    import tensorflow as tf

    model_path = tmp_path / "model.keras"
    save(tiny_model, model_path, {"class_names": ["a", "b", "c"]})
    out_dir = tmp_path / "serving"
    assert run_cli(["export", str(model_path), str(out_dir)]) == 0
    assert "3 classes" in capsys.readouterr().out
    fn = tf.saved_model.load(str(out_dir)).signatures["serving_default"]
    np.testing.assert_allclose(
        fn(images=tf.constant(images))["scores"].numpy(),
        tiny_model.predict(images, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    assert run_cli(["export", str(model_path), str(out_dir)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert run_cli(["export", str(tmp_path / "none.keras"), str(tmp_path / "o")]) == 2
    assert "model file not found" in capsys.readouterr().err
