"""The public API is a contract: names and signatures may grow, never break silently.

``tests/public_api.txt`` records every name in ``keras_cnnkit.__all__`` and in each public
subpackage's ``__all__``, with its kind and call signature. This test fails when a recorded
name disappears, or when a signature changes incompatibly (a parameter removed, renamed,
reordered, made required, or a default changed), unless the old name or argument carries a
deprecation from :mod:`keras_cnnkit._deprecation` that has not yet reached its removal
version. Additions pass. After an intended change, regenerate the snapshot with::

    python tests/test_public_api.py --update
"""

from __future__ import annotations

import enum
import importlib
import inspect
import os
import pathlib
import sys

SNAPSHOT = pathlib.Path(__file__).with_name("public_api.txt")
MODULES = [
    "keras_cnnkit",
    "keras_cnnkit.backbones",
    "keras_cnnkit.data",
    "keras_cnnkit.datasets",
    "keras_cnnkit.errors",
    "keras_cnnkit.evaluation",
    "keras_cnnkit.experiments",
    "keras_cnnkit.finetune",
    "keras_cnnkit.io",
    "keras_cnnkit.layers",
    "keras_cnnkit.models",
    "keras_cnnkit.preprocessing",
    "keras_cnnkit.training",
]


def _kind(obj) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "constant"


def _signature(obj) -> str:
    if inspect.ismodule(obj) or not callable(obj):
        return ""
    if inspect.isclass(obj) and issubclass(obj, BaseException | enum.Enum):
        return ""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    params = []
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        text = {
            p.VAR_POSITIONAL: f"*{p.name}",
            p.VAR_KEYWORD: f"**{p.name}",
        }.get(p.kind, p.name)
        if p.default is not p.empty:
            text += f"={_default(p.default)}"
        params.append((p.kind, text))
    out, star_done = [], False
    for kind, text in params:
        if kind == inspect.Parameter.KEYWORD_ONLY and not star_done:
            out.append("*")
            star_done = True
        if kind == inspect.Parameter.VAR_POSITIONAL:
            star_done = True
        out.append(text)
        if kind == inspect.Parameter.POSITIONAL_ONLY and (
            len(out) == len(params) or params[len(out)][0] != inspect.Parameter.POSITIONAL_ONLY
        ):
            out.append("/")
    return "(" + ", ".join(out) + ")"


def _default(value) -> str:
    if isinstance(value, int | float | str | bool | type(None) | tuple):
        return repr(value)
    if inspect.isfunction(value) or inspect.isclass(value):
        return f"<{value.__qualname__}>"
    return f"<{type(value).__name__}>"


def current_api() -> dict[str, tuple[str, str]]:
    """``{"module.name": (kind, signature)}`` for every public name."""
    api = {}
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            api[f"{module_name}.{name}"] = (_kind(obj), _signature(obj))
    return api


def read_snapshot() -> dict[str, tuple[str, str]]:
    api = {}
    for line in SNAPSHOT.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind, sig = (line.split(" ", 2) + [""])[:3]
            api[name] = (kind, sig)
    return api


def write_snapshot(api: dict[str, tuple[str, str]]) -> None:
    lines = ["# keras_cnnkit public API; regenerate: python tests/test_public_api.py --update"]
    lines += [f"{name} {kind} {sig}".rstrip() for name, (kind, sig) in sorted(api.items())]
    SNAPSHOT.write_text("\n".join(lines) + "\n")


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def _parse_params(sig: str) -> list[str]:
    inner = sig.strip()[1:-1]
    parts, depth, current = [], 0, ""
    for ch in inner:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def incompatibilities(old: str, new: str) -> list[str]:
    """Why a call valid against signature ``old`` may fail or change meaning under ``new``."""
    if old == new or not old:
        return []
    if not new:
        return [f"signature {old} is gone"]
    problems = []
    old_params, new_params = _parse_params(old), _parse_params(new)

    def split(params):
        positional, keyword, star, var_kw = [], {}, False, False
        for p in params:
            if p == "*" or p.startswith("*") and not p.startswith("**"):
                star = True
                continue
            if p == "/":
                continue
            if p.startswith("**"):
                var_kw = True
                continue
            name, _, default = p.partition("=")
            keyword[name] = default
            if not star:
                positional.append(name)
        return positional, keyword, var_kw

    old_pos, old_kw, _ = split(old_params)
    new_pos, new_kw, new_var_kw = split(new_params)
    for name, default in old_kw.items():
        if name not in new_kw:
            if not new_var_kw:
                problems.append(f"parameter {name!r} removed")
            continue
        if default and new_kw[name] != default:
            problems.append(
                f"default of {name!r} changed from {default} to {new_kw[name] or 'required'}"
            )
    if new_pos[: len(old_pos)] != [n for n in old_pos if n in new_kw][: len(old_pos)]:
        problems.append(f"positional order changed: {old_pos} -> {new_pos[: len(old_pos)]}")
    for name, default in new_kw.items():
        if name not in old_kw and not default:
            problems.append(f"new required parameter {name!r}")
    return problems


def _deprecation_pending(qualified: str) -> bool:
    """Whether ``qualified`` (or its module) still carries an unexpired deprecation."""
    from keras_cnnkit import __version__

    module_name, _, name = qualified.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return False
    marks = [getattr(obj, "__deprecated__", None)]
    marks += list(getattr(obj, "__deprecated_arguments__", {}).values())
    return any(
        mark and _version_tuple(__version__) < _version_tuple(mark["removed_in"]) for mark in marks
    )


def api_problems(snapshot: dict, current: dict) -> list[str]:
    """Every way ``current`` breaks code written against ``snapshot``."""
    problems = []
    for name, (kind, sig) in snapshot.items():
        if name not in current:
            problems.append(f"{name}: removed (deprecate it for one minor release first)")
            continue
        new_kind, new_sig = current[name]
        if new_kind != kind:
            problems.append(f"{name}: was a {kind}, now a {new_kind}")
        for why in incompatibilities(sig, new_sig):
            if not _deprecation_pending(name):
                problems.append(f"{name}: {why}")
    return problems


def test_public_api_matches_snapshot():
    problems = api_problems(read_snapshot(), current_api())
    assert not problems, (
        "incompatible public API changes (if intended, deprecate first, then run "
        "`python tests/test_public_api.py --update`):\n  " + "\n  ".join(problems)
    )


def test_every_public_name_resolves_and_is_documented():
    missing = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)  # raises if __all__ names something undefined
            if _kind(obj) in ("class", "function") and not (obj.__doc__ or "").strip():
                missing.append(f"{module_name}.{name}")
    assert not missing, f"public names without a docstring: {missing}"


def test_new_names_are_in_the_snapshot():
    """Keeps the snapshot complete so a later removal is noticed; regenerate after adding."""
    added = sorted(set(current_api()) - set(read_snapshot()))
    assert not added, (
        f"public names missing from {SNAPSHOT.name}: {added}; "
        "run `python tests/test_public_api.py --update`"
    )


def test_removed_or_changed_names_are_reported():
    snapshot = read_snapshot()
    current = dict(snapshot)
    del current["keras_cnnkit.conv_stack"]
    kind, sig = current["keras_cnnkit.list_backbones"]
    current["keras_cnnkit.list_backbones"] = (kind, sig.replace("pattern='*'", "pattern"))
    problems = api_problems(snapshot, current)
    assert any(p.startswith("keras_cnnkit.conv_stack: removed") for p in problems)
    assert any("list_backbones" in p and "'pattern'" in p for p in problems)
    assert api_problems(snapshot, snapshot) == []


def test_incompatibility_rules():
    assert incompatibilities("(a, b=1)", "(a, b=1, c=2)") == []
    assert incompatibilities("(a, b=1)", "(a, *, b=1)") != []  # b no longer positional
    assert incompatibilities("(a, b=1)", "(a, b=2)") == ["default of 'b' changed from 1 to 2"]
    assert incompatibilities("(a, b=1)", "(a)") == ["parameter 'b' removed"]
    assert incompatibilities("(a, b=1)", "(a, b=1, **kwargs)") == []
    assert incompatibilities("(a)", "(a, c)") == ["new required parameter 'c'"]
    assert incompatibilities("(a, *, b=1)", "(a, *, c=1, b=1)") == []


if __name__ == "__main__":
    if "--update" not in sys.argv:
        sys.exit("usage: python tests/test_public_api.py --update   (rewrites public_api.txt)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(SNAPSHOT.parent.parent))
    write_snapshot(current_api())
    print(f"wrote {SNAPSHOT} ({len(read_snapshot())} names)")
