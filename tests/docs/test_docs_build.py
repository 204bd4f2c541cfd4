"""The Sphinx docs build without a single warning, cover the public API, and their code runs."""

from __future__ import annotations

import importlib
import os
import pathlib
import re
import subprocess
import sys
import warnings

import pytest

from keras_cnnkit._deprecation import KerasCnnkitDeprecationWarning

pytestmark = pytest.mark.tensorflow(
    "the docs' examples run tf.data pipelines and SavedModel exports"
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

pytest.importorskip("sphinx", reason="the docs extra (sphinx, furo, myst-parser) is not installed")
pytest.importorskip("furo", reason="the docs extra is not installed")
pytest.importorskip("myst_parser", reason="the docs extra is not installed")


def _sphinx(builder: str, out: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder]
    return subprocess.run(
        [*cmd, "-d", str(out / ".doctrees"), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("html")
    proc = _sphinx("html", out)
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stderr[-6000:]}"
    return out


def test_docs_build_without_warnings(html):
    index = (html / "index.html").read_text()
    for page in ("getting-started", "api", "examples", "changelog", "benchmarks"):
        assert f'href="{page}.html"' in index, f"{page} is not in the navigation"
    assert "keras-cnnkit" in index


def _public_modules() -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_public_api import MODULES

    return MODULES


def test_api_reference_covers_every_public_name(html):
    api = (html / "api.html").read_text()
    ids = set(re.findall(r'id="(keras_cnnkit[\w.]*)"', api))
    missing = []
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        for name in module.__all__:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                obj = getattr(module, name)
            moved_to = [
                m.group(1)
                for w in caught
                if issubclass(w.category, KerasCnnkitDeprecationWarning)
                and (m := re.search(r"use (keras_cnnkit[\w.]*\w)", str(w.message)))
            ]
            if moved_to:
                # a deprecated old path: documented once, at its new home
                ok = all(target in ids for target in moved_to)
            elif module_name == "keras_cnnkit":
                # re-exports: documented once under their subpackage, linked from the top
                if type(obj).__name__ == "module":
                    ok = f"{module_name}.{name}" in ids or f"keras_cnnkit.{name}" in api
                else:
                    ok = any(i == f"keras_cnnkit.{name}" or i.endswith(f".{name}") for i in ids)
            else:
                ok = f"{module_name}.{name}" in ids
            if not ok:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names missing from docs/api.rst: {missing}"
    # type hints are rendered and Google-style sections are parsed by napoleon
    conv_stack = api[api.index('id="keras_cnnkit.models.conv_stack"') :][:20000]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", conv_stack))
    assert "Parameters" in text and "Returns" in text and "Raises" in text
    assert "num_classes ( int )" in text  # the type hint, rendered


def test_gallery_images_exist_and_are_small(html):
    page = (html / "examples.html").read_text()
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', page)
    assert len(images) >= 3, images
    for src in images:
        path = html / src
        assert path.stat().st_size < 200_000, f"{src} is {path.stat().st_size} bytes"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_docs_code_runs_as_doctests(tmp_path):
    proc = _sphinx("doctest", tmp_path)
    report = (tmp_path / "output.txt").read_text() if (tmp_path / "output.txt").exists() else ""
    assert proc.returncode == 0, f"doctests failed:\n{report[-6000:]}\n{proc.stderr[-3000:]}"
    assert re.search(r"\n\s+(\d+) tests\n\s+0 failures in tests", report), report[-2000:]
    assert int(re.search(r"(\d+) tests\n", report).group(1)) > 20
