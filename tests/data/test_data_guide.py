"""The data guide (docs/preprocessing.rst) runs as written and prints what it shows."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import textwrap

import pytest

GUIDE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "preprocessing.rst"

pytestmark = pytest.mark.tensorflow("tf.data pipelines and SavedModel export")


def _blocks(text: str) -> list[tuple[str, str]]:
    """``(kind, body)`` of the guide's testsetup/testcode/testoutput blocks, in order."""
    out = []
    pattern = re.compile(
        r"^\.\. (testsetup|testcode|testoutput):: guide\n\n((?:    .*\n|\n)+)", re.M
    )
    for match in pattern.finditer(text):
        out.append((match.group(1), textwrap.dedent(match.group(2)).strip("\n")))
    return out


def test_the_guide_runs_as_written(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the guide's setup moves to a folder of its own
    blocks = _blocks(GUIDE.read_text())
    assert [k for k, _ in blocks].count("testcode") >= 4
    namespace: dict = {}
    printed = ""
    for kind, body in blocks:
        if kind == "testoutput":
            assert printed.strip() == body.strip()
            continue
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(body, f"{GUIDE.name}:{kind}", "exec"), namespace)
        printed = buffer.getvalue()
