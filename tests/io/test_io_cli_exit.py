"""Every command maps errors the same way: 2 for a user's mistake, 1 when the work fails."""

from __future__ import annotations

import logging
import pathlib

import numpy as np
import pytest
from PIL import Image

from keras_cnnkit.cli.main import main as cnnkit
from keras_cnnkit.errors import StorageError
from keras_cnnkit.io import save, upload


@pytest.fixture
def emulator(gcs_server, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    return gcs_server


@pytest.fixture
def files(tiny_model, tmp_path):
    good = tmp_path / "model.keras"
    save(tiny_model, good)
    corrupt = tmp_path / "corrupt.keras"
    save(tiny_model, corrupt)
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), "uint8")).save(image)
    return {"good": good, "corrupt": corrupt, "image": image, "tmp": tmp_path}


# (command line, exit code): {good}, {corrupt}, {image}, {tmp} and {bucket} are filled in.
CASES = [
    # user mistakes: 2
    (["train", "{tmp}/none.toml"], 2),
    (["evaluate", "{tmp}/none.keras", "{tmp}"], 2),
    (["predict", "{good}", "{tmp}/none.png"], 2),
    (["export", "{tmp}/none.keras", "{tmp}/out"], 2),
    (["upload", "{tmp}/none.bin", "gs://{bucket}/x"], 2),
    (["upload", "{good}", "s3://elsewhere/x"], 2),
    # failures of the work: 1
    (["evaluate", "{corrupt}", "{tmp}"], 1),
    (["predict", "{corrupt}", "{image}"], 1),
    (["export", "{corrupt}", "{tmp}/out"], 1),
    (["export", "{good}", "{tmp}"], 1),  # the destination exists: --overwrite
    (["upload", "{good}", "gs://no-such-bucket-x1/m.keras", "--deadline", "5"], 1),
    (["download", "gs://{bucket}/nothing", "{tmp}/d", "--deadline", "5"], 1),
]


@pytest.mark.parametrize("argv, code", CASES, ids=[" ".join(c[0][:2]) for c in CASES])
def test_exit_code_of_every_command(files, bucket, emulator, argv, code, capsys):
    argv = [a.format(bucket=bucket, **files) for a in argv]
    assert cnnkit(argv) == code
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"cnnkit {argv[0]}: error: ")
    assert "Traceback" not in err and "100%" not in err


def test_progress_never_reaches_100_percent_before_an_error(tmp_path, emulator):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"x" * 300_000)
    seen = []
    with pytest.raises(StorageError, match="no-such-bucket-x2"):
        upload(path, "gs://no-such-bucket-x2/blob.bin", progress=lambda d, t: seen.append((d, t)))
    assert seen and all(done < total for done, total in seen)


def test_quiet_silences_the_per_file_lines(tmp_path, bucket, emulator, capsys, caplog):
    caplog.set_level(logging.INFO)
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(str(i))
    assert cnnkit(["upload", str(folder), f"gs://{bucket}/f", "-q"]) == 0
    assert not [r for r in caplog.records if r.message.startswith("uploaded gs://")]
    assert cnnkit(["download", f"gs://{bucket}/f", str(tmp_path / "back"), "-q"]) == 0
    assert not [r for r in caplog.records if r.message.startswith("downloaded gs://")]
    assert cnnkit(["download", f"gs://{bucket}/f", str(tmp_path / "again")]) == 0
    assert [r for r in caplog.records if r.message.startswith("downloaded gs://")]
    assert sorted(p.name for p in pathlib.Path(tmp_path / "back").iterdir()) == [
        "0.txt",
        "1.txt",
        "2.txt",
    ]
