"""Keep ``.keras`` files readable by every supported Keras version.

Newer Keras releases write some constructor arguments even when they hold their
default value; older releases reject an argument they do not know. An argument at
its default means the same to both, so :func:`make_portable` drops exactly those
entries from the archive's ``config.json``: the file then loads under the oldest
supported Keras and, unchanged, under the newest (which fills in the default).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import zipfile
from typing import Any

_VARIANCE_SCALING = frozenset(
    f"keras.initializers>{name}"
    for name in (
        "VarianceScaling",
        "GlorotUniform",
        "GlorotNormal",
        "LecunNormal",
        "LecunUniform",
        "HeNormal",
        "HeUniform",
    )
)
_BATCH_NORM = frozenset({"keras.layers>BatchNormalization", "keras_cnnkit>BatchNorm"})

#: ``(classes, {argument: default})``: arguments that a Keras release newer than the
#: oldest supported one (3.10) writes at their default value. A class is named
#: ``module>ClassName`` for Keras' own objects and by its registered name otherwise.
LATER_DEFAULTS: tuple[tuple[frozenset[str], dict[str, Any]], ...] = (
    # Keras 3.14: batch renormalization.
    (_BATCH_NORM, {"renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99}),
    # Keras 3.15: fan axes of the variance-scaling initializers.
    (_VARIANCE_SCALING, {"input_axes": None, "output_axes": None}),
)

CONFIG_ENTRY = "config.json"


def class_names(node: dict) -> set[str]:
    """The names a serialized object answers to: ``module>ClassName`` and its registered name."""
    return {f"{node.get('module')}>{node.get('class_name')}", node.get("registered_name")}


def _strip(node: Any) -> int:
    """Drop later-release arguments at their defaults, in place; returns how many."""
    dropped = 0
    if isinstance(node, dict):
        config = node.get("config")
        if isinstance(config, dict) and "class_name" in node:
            names = class_names(node)
            for classes, defaults in LATER_DEFAULTS:
                if names & classes:
                    for key, default in defaults.items():
                        if key in config and config[key] == default:
                            del config[key]
                            dropped += 1
        for value in node.values():
            dropped += _strip(value)
    elif isinstance(node, list):
        for value in node:
            dropped += _strip(value)
    return dropped


def portable_config(config: dict) -> tuple[dict, int]:
    """A copy of a model's ``config.json`` without later-release default arguments.

    Args:
        config: The parsed ``config.json`` of a ``.keras`` archive.

    Returns:
        ``(config, dropped)``: the cleaned copy and the number of entries dropped.

    Example:
        >>> init = {"module": "keras.initializers", "class_name": "HeNormal",
        ...         "config": {"seed": None, "input_axes": None, "output_axes": None}}
        >>> cleaned, dropped = portable_config({"layer": init})
        >>> cleaned["layer"]["config"], dropped
        ({'seed': None}, 2)
    """
    config = json.loads(json.dumps(config))
    return config, _strip(config)


def make_portable(archive: str | os.PathLike) -> int:
    """Rewrite a ``.keras`` archive's ``config.json`` in place with :func:`portable_config`.

    The archive is rewritten through a sibling temporary file only when something
    changes; other entries are copied byte for byte with their compression.

    Args:
        archive: A ``.keras`` file the caller owns (not yet visible to readers).

    Returns:
        The number of entries dropped (0 leaves the file untouched).
    """
    archive = pathlib.Path(archive)
    with zipfile.ZipFile(archive) as zin:
        config, dropped = portable_config(json.loads(zin.read(CONFIG_ENTRY)))
        if not dropped:
            return 0
        rewritten = archive.with_name(archive.name + ".portable")
        try:
            with zipfile.ZipFile(rewritten, "w") as zout:
                for info in zin.infolist():
                    if info.filename == CONFIG_ENTRY:
                        zout.writestr(info, json.dumps(config))
                        continue
                    with zin.open(info) as src, zout.open(info, "w") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        except BaseException:
            rewritten.unlink(missing_ok=True)
            raise
    os.replace(rewritten, archive)
    return dropped
