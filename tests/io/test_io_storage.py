"""One storage layer: atomic writes that survive a kill, models and metadata as one unit."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _io_helpers import build_tiny_model

from keras_cnnkit.cli.main import main as cnnkit
from keras_cnnkit.io import download, load, save, upload
from keras_cnnkit.io.metadata import sidecar_path

HERE = pathlib.Path(__file__).parent

#: Saves model "B" over the model "A" at argv[1], killing itself with SIGKILL right
#: before (argv[3] == "before") or after the N-th (argv[2]) rename of the save.
KILLED_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {here!r})
    from _io_helpers import build_tiny_model
    from keras_cnnkit.io import save

    path, n, when = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    model = build_tiny_model("B")
    real_replace, calls = os.replace, [0]

    def replace(src, dst, *args, **kwargs):
        calls[0] += 1
        if calls[0] == n and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst, *args, **kwargs)
        if calls[0] == n and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    save(model, path, {{"extra": {{"name": "B"}}}}, overwrite=True)
    print("finished", calls[0])
    """
).format(here=str(HERE))


def _leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def _killed_save(path: pathlib.Path, n: int, when: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", KILLED_SAVE, str(path), str(n), when],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )


@pytest.mark.parametrize("n, when", [(1, "before"), (1, "after"), (2, "after"), (3, "after")])
def test_a_kill_at_any_rename_of_save_leaves_a_loadable_model(tmp_path, images, n, when):
    path = tmp_path / "model.keras"
    old = build_tiny_model("A")
    save(old, path, {"extra": {"name": "A"}})
    proc = _killed_save(path, n, when)
    if proc.returncode == 0:  # the save made fewer renames than n: nothing to test here
        pytest.fail(f"the save finished after {proc.stdout.split()[-1]} renames")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    model, meta = load(path)  # verifies the sha256: never IntegrityError after a kill
    name = meta.extra["name"]
    assert name in ("A", "B") and model.name == name
    # The next save to the same destination removes what the killed one left.
    save(old, path, {"extra": {"name": "A"}}, overwrite=True)
    assert _leftovers(tmp_path) == []
    np.testing.assert_array_equal(
        load(path).model.predict(images, verbose=0), old.predict(images, verbose=0)
    )


def test_save_creates_missing_parent_folders(tiny_model, tmp_path):
    path = tmp_path / "a" / "b" / "model.keras"
    save(tiny_model, path)
    assert load(path).metadata.sha256


@pytest.fixture
def emulator(gcs_server, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    return gcs_server


def test_upload_and_download_carry_the_model_metadata(tiny_model, images, tmp_path, bucket, gcs):
    path = tmp_path / "model.keras"
    save(tiny_model, path, {"class_names": ["a", "b", "c"]})
    upload(path, f"gs://{bucket}/models/", progress=False, gcs=gcs)
    model, meta = load(f"gs://{bucket}/models/model.keras", gcs=gcs)
    assert meta.class_names == ["a", "b", "c"]
    dest = tmp_path / "dl" / "deeper" / "model.keras"  # missing parents are created
    download(f"gs://{bucket}/models/model.keras", dest, progress=False, gcs=gcs)
    assert sidecar_path(dest).is_file()
    model, meta = load(dest)
    assert meta.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(
        model.predict(images, verbose=0), tiny_model.predict(images, verbose=0)
    )


def test_cli_predict_on_an_uploaded_model(tiny_model, tmp_path, bucket, emulator, capsys):
    from PIL import Image

    path = tmp_path / "model.keras"
    save(tiny_model, path, {"class_names": ["a", "b", "c"]})
    assert cnnkit(["upload", str(path), f"gs://{bucket}/m/", "-q", "--deadline", "5"]) == 0
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), "uint8")).save(image)
    capsys.readouterr()
    assert cnnkit(["predict", f"gs://{bucket}/m/model.keras", str(image), "--jsonl"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert {p["class"] for p in line["top"]} <= {"a", "b", "c"}


def test_cli_download_and_export_create_parent_folders(tiny_model, tmp_path, bucket, emulator):
    path = tmp_path / "model.keras"
    save(tiny_model, path)
    assert cnnkit(["upload", str(path), f"gs://{bucket}/m/model.keras", "-q"]) == 0
    dest = tmp_path / "dl" / "model.keras"
    assert cnnkit(["download", f"gs://{bucket}/m/model.keras", str(dest), "-q"]) == 0
    assert load(dest).metadata.sha256
    out = tmp_path / "serving" / "pets" / "1"
    assert cnnkit(["export", str(dest), str(out)]) == 0
    assert (out / "saved_model.pb").is_file()


def test_messages_name_the_flags_the_user_typed(tiny_model, tmp_path, capsys):
    path = tmp_path / "model.keras"
    save(tiny_model, path)
    out = tmp_path / "exported"
    assert cnnkit(["export", str(path), str(out)]) == 0
    capsys.readouterr()
    assert cnnkit(["export", str(path), str(out)]) == 1
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    plain = tmp_path / "plain.keras"
    tiny_model.save(plain)
    assert cnnkit(["export", str(plain), str(tmp_path / "o2")]) == 1
    err = capsys.readouterr().err
    assert "--no-verify" in err and "verify=False" not in err
