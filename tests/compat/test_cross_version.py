"""A .keras file saved under the oldest supported TensorFlow/Keras loads under the newest, and back.

Needs two interpreters with keras_cnnkit installed: by default the tox environments
``tf216`` (TensorFlow 2.16 with Keras 3.10) and ``tf221`` (the newest), which
``make test-versions`` creates; ``CNNKIT_OLD_PYTHON``/``CNNKIT_NEW_PYTHON`` point elsewhere.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

pytestmark = pytest.mark.compat

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = pathlib.Path(__file__).with_name("_roundtrip.py")
ENVS = {
    "old": os.environ.get("CNNKIT_OLD_PYTHON", str(ROOT / ".tox" / "tf216" / "bin" / "python")),
    "new": os.environ.get("CNNKIT_NEW_PYTHON", str(ROOT / ".tox" / "tf221" / "bin" / "python")),
}
MODELS = {"classic", "fast", "spec", "backbone"}


def _run(python: str, mode: str, folder: pathlib.Path) -> dict:
    if not pathlib.Path(python).is_file():
        pytest.skip(f"{python} not found: run `make test-versions` (tox -e tf216,tf221) first")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    proc = subprocess.run(
        [python, str(SCRIPT), mode, str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=folder.parent,  # not the checkout: each side imports its own installed package
    )
    assert proc.returncode == 0, f"{mode} under {python} failed:\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("writer", "reader"), [("old", "new"), ("new", "old")])
def test_keras_file_loads_and_predicts_identically_across_versions(tmp_path, writer, reader):
    folder = tmp_path / f"saved-by-{writer}"
    saved = _run(ENVS[writer], "save", folder)
    loaded = _run(ENVS[reader], "load", folder)

    # Really two different stacks, or the test proves nothing.
    assert (saved["tensorflow"], saved["keras"]) != (loaded["tensorflow"], loaded["keras"])
    assert set(loaded["loaded"]) == MODELS
    for name, result in loaded["loaded"].items():
        assert result["max_abs_error"] <= 1e-5, (name, result, saved, loaded)
        assert result["same_argmax"], name
        assert result["class_names"], name
