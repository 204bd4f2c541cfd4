"""The documentation's figures: present, small, and the diagrams drawn from the code as it is."""

from __future__ import annotations

import importlib.util
import pathlib
import re
import struct

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SCRIPT = DOCS / "_scripts" / "make_figures.py"


def _script():
    spec = importlib.util.spec_from_file_location("make_figures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _referenced() -> dict[str, list[str]]:
    found = {}
    for rst in sorted(DOCS.glob("*.rst")):
        paths = re.findall(r"^\.\. (?:figure|image):: (\S+)", rst.read_text(), re.M)
        if paths:
            found[rst.stem] = paths
    return found


def test_every_referenced_picture_exists_and_is_small():
    referenced = _referenced()
    for page in ("getting-started", "translation-invariance", "examples"):
        assert page in referenced, f"docs/{page}.rst shows no picture"
    for page, paths in referenced.items():
        for rel in paths:
            path = DOCS / rel
            assert path.is_file(), f"docs/{page}.rst shows {rel}, which does not exist"
            assert path.stat().st_size < 150_000, f"{rel} is {path.stat().st_size} bytes"
            if path.suffix == ".png":
                data = path.read_bytes()
                assert data[:8] == b"\x89PNG\r\n\x1a\n", rel
                width, height = struct.unpack(">II", data[16:24])
                assert width >= 300 and height >= 200, (rel, width, height)
            else:
                assert path.suffix == ".svg" and path.read_text().startswith("<svg "), rel


def test_demo_pictures_are_the_ones_the_script_makes():
    script = _script()
    shown = {pathlib.PurePosixPath(p).name for paths in _referenced().values() for p in paths}
    assert set(script.DEMO_PICTURES) <= shown
    for name in script.DEMO_PICTURES:
        assert (script.EXAMPLE_PICTURES / name).is_file(), name


@pytest.mark.tensorflow("builds a keras.applications backbone and reads the training outputs")
def test_committed_diagrams_match_the_code(tmp_path):
    """Rerun ``make_figures.py diagrams``: the committed SVGs are what the code draws now."""
    script = _script()
    written = script.write_diagrams(tmp_path)
    assert [p.name for p in written] == list(script.DIAGRAMS)
    for path in written:
        committed = script.FIGURES / path.name
        assert committed.read_text() == path.read_text(), (
            f"{committed.relative_to(ROOT)} is stale: run python docs/_scripts/make_figures.py "
            "diagrams"
        )
    drawing = (tmp_path / "build_classifier.svg").read_text()
    for text in ("images", "uint8", "resize", "preset &#x27;caffe&#x27;", "InferenceMode(resnet50)",
                 "ClassifierHead", "Dense 10, softmax", "(batch, 7, 7, 2048)"):  # fmt: skip
        assert text in drawing, text
    outputs = (tmp_path / "run_outputs.svg").read_text()
    for text in ("model.keras", "checkpoints/a/, checkpoints/b/", "history.partial.json"):
        assert text in outputs, text
