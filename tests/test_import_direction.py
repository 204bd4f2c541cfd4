"""Imports flow one way: the command line on top, layers and errors at the bottom.

Every import of a keras_cnnkit module is read from the source (module level and inside
functions alike), so an upward import fails here before it makes an import cycle.
"""

from __future__ import annotations

import ast
import pathlib

import keras_cnnkit

ROOT = pathlib.Path(keras_cnnkit.__file__).parent

#: What the bottom packages may import: only each other and these helpers.
BOTTOM_HELPERS = ("keras_cnnkit._api", "keras_cnnkit._version", "keras_cnnkit._deprecation")


def _module_name(path: pathlib.Path) -> str:
    parts = ("keras_cnnkit", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(ROOT.rglob("*.py")):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)  # and each name, which may be a submodule
                found |= {f"{node.module}.{a.name}" for a in node.names}
        graph[_module_name(path)] = {m for m in found if m.startswith("keras_cnnkit")}
    return graph


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_is_read():
    graph = _imports()
    assert "keras_cnnkit.cli._backend" in graph["keras_cnnkit.cli.main"]
    assert "keras_cnnkit.errors" in graph["keras_cnnkit.layers.conv_block"]


def test_only_the_command_line_imports_the_command_line():
    wrong = {
        module: sorted(m for m in deps if _within(m, "keras_cnnkit.cli"))
        for module, deps in _imports().items()
        if not _within(module, "keras_cnnkit.cli") and module != "keras_cnnkit.__main__"
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_errors_import_nothing_of_keras_cnnkit():
    assert _imports()["keras_cnnkit.errors"] == set()


def test_layers_import_only_layers_errors_and_helpers():
    allowed = ("keras_cnnkit.layers", "keras_cnnkit.errors", *BOTTOM_HELPERS)
    wrong = {
        module: sorted(m for m in deps if not any(_within(m, a) for a in allowed))
        for module, deps in _imports().items()
        if _within(module, "keras_cnnkit.layers")
    }
    assert {k: v for k, v in wrong.items() if v} == {}
