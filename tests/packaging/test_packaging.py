"""What a user installs: the license is in the wheel; the Pythons we claim agree everywhere."""

from __future__ import annotations

import configparser
import pathlib
import re
import subprocess
import sys
import zipfile

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

# Each Python the package claims ran tests/smoke with `make test-pythons` (3.11 runs the suite).
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")


def test_license_is_the_apache_2_text():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(text.splitlines()) > 190  # the full text, not a one-line notice
    assert PYPROJECT["project"]["license"] == "Apache-2.0"


def test_wheel_carries_the_license(tmp_path):
    pytest.importorskip("hatchling", reason="the test extra (hatchling) is not installed")
    # the build backend itself (PEP 517), offline, without pip
    code = f"import hatchling.build as b; print(b.build_wheel({str(tmp_path)!r}))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("keras_cnnkit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        licenses = [n for n in zf.namelist() if re.search(r"\.dist-info/licenses/LICENSE$", n)]
        assert licenses, f"no LICENSE in {wheel.name}: {zf.namelist()[-8:]}"
        assert zf.read(licenses[0]).decode() == (ROOT / "LICENSE").read_text()
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata or "License: Apache-2.0" in metadata
    for version in SUPPORTED:
        assert f"Classifier: Programming Language :: Python :: {version}" in metadata


def test_claimed_pythons_agree_across_pyproject_tox_and_docs():
    classifiers = {
        c.rsplit(" :: ", 1)[1]
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert classifiers == set(SUPPORTED)
    assert PYPROJECT["project"]["requires-python"] == f">={SUPPORTED[0]}"

    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    env_list = tox["tox"]["env_list"]
    others = ",".join(v.replace(".", "") for v in SUPPORTED if v != "3.11")
    assert f"py{{{others}}}-smoke" in env_list, "a claimed Python without its smoke env"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-pythons:", makefile, re.M), "no make test-pythons"
    assert "py310-smoke,py312-smoke,py313-smoke" in makefile

    span = f"Python {SUPPORTED[0]} to {SUPPORTED[-1]}"
    assert span in (ROOT / "docs" / "getting-started.rst").read_text()
    assert f"Python {SUPPORTED[0]}-{SUPPORTED[-1]}" in (ROOT / "README.md").read_text()
