"""The code a reader copies first runs as written, offline: README's "Use" and getting-started.

Each snippet runs in a fresh interpreter whose sockets refuse every address but 127.0.0.1,
so a download (``keras.datasets``, ImageNet weights) fails the test instead of hanging.
"""

from __future__ import annotations

import ast
import builtins
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

OFFLINE = """
import socket

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_connect, _getaddrinfo = socket.socket.connect, socket.getaddrinfo


def _check(host):
    if isinstance(host, str) and host not in _LOOPBACK:
        raise OSError(f"network access to {host!r} during an offline snippet")


def _connect_loopback(self, address):
    _check(address[0] if isinstance(address, tuple) else address)
    return _connect(self, address)


def _getaddrinfo_loopback(host, *args, **kwargs):
    _check(host)
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _connect_loopback
socket.getaddrinfo = _getaddrinfo_loopback
"""


def readme_use_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


def getting_started_snippets() -> list[str]:
    text = (ROOT / "docs" / "getting-started.rst").read_text()
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:   .*\n|\n)+)", text, re.M)
    return [textwrap.dedent(b) for b in blocks]


def _run_offline(code: str, tmp_path: pathlib.Path) -> str:
    (tmp_path / "sitecustomize.py").write_text(OFFLINE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_HOME": str(tmp_path / "keras"),
    }
    script = tmp_path / "snippet.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert proc.returncode == 0, f"snippet failed:\n{code}\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_offline_guard_refuses_the_network(tmp_path):
    code = "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=5)\n"
    (tmp_path / "sitecustomize.py").write_text(OFFLINE)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=60,
    )
    assert proc.returncode != 0
    assert "network access to 'example.com' during an offline snippet" in proc.stderr


def test_snippets_use_only_names_they_define():
    """Cheap check: every name a snippet reads is imported, assigned or built in."""
    for code in [readme_use_snippet(), *getting_started_snippets()]:
        assert "keras.datasets" not in code
        tree = ast.parse(code)
        defined = set(dir(builtins))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                defined.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert used <= defined, f"undefined in a snippet: {sorted(used - defined)}"


@pytest.mark.slow
def test_readme_use_example_runs_as_written(tmp_path):
    out = _run_offline(readme_use_snippet(), tmp_path)
    lines = out.strip().splitlines()
    accuracy = float(next(line for line in lines if re.fullmatch(r"0\.\d+", line.strip())))
    assert accuracy > 0.5, out[-2000:]
    assert "| dy \\ dx | -4 | -2 | +0 | +2 | +4 |" in out


@pytest.mark.slow
def test_getting_started_runs_offline(tmp_path):
    snippets = getting_started_snippets()
    assert snippets, "docs/getting-started.rst has no python code-block"
    out = _run_offline("\n".join(snippets), tmp_path)
    assert float(out.strip().splitlines()[-1]) > 0.5, out[-2000:]
