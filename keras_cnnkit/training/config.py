"""The run configuration of :func:`keras_cnnkit.training.train`: a TOML file, checked."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import os
import pathlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the same parser, from its backport
    import tomli as tomllib

from keras_cnnkit.errors import ConfigError

__all__ = [
    "SCHEMA",
    "RunConfig",
    "load_config",
    "parse_override",
]

# Each section: key -> (expected type(s), default). ``list``/``dict`` defaults are copied.
_NUMBER = (int, float)
SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    "data": {
        "train": (str, ""),
        "validation": (str, ""),
        "validation_split": (_NUMBER, 0.0),
        "image_size": (list, []),
        "color_mode": (str, "rgb"),
        "class_names": (list, []),
        "service": (str, ""),
        "service_mode": (str, "distributed_epoch"),
        "service_timeout": (_NUMBER, 10.0),
        "shard_cache": (str, ""),
        "cache": (str, "auto"),
        "cache_limit_gib": (_NUMBER, 0.0),
    },
    "model": {
        "recipe": (str, ""),
        "spec": (dict, {}),
        "backbone": (str, ""),
        "weights": (str, "none"),
        "width": (_NUMBER, 1.0),
        "options": (dict, {}),
    },
    "training": {
        "epochs": (int, 10),
        "batch_size": (int, 32),
        "optimizer": (str, ""),
        "learning_rate": (_NUMBER, 0.0),
        "momentum": (_NUMBER, 0.9),
        "weight_decay": (_NUMBER, 0.0),
        "schedule": (str, ""),
        "warmup_fraction": (_NUMBER, 0.1),
        "label_smoothing": (_NUMBER, 0.0),
        "augment": (bool, True),
        "shuffle": (bool, True),
        "precision": (str, "auto"),
        "jit_compile": ((bool, str), "auto"),
        "seed": (int, 0),
        "monitor": (str, ""),
        "top_k": (int, 5),
        "checkpoint_every_steps": (int, 0),
    },
    "distribution": {
        "strategy": (str, "auto"),
        "cpu_devices": (int, 0),
        "num_processes": (int, 0),
        "process_id": (int, -1),
        "coordinator_address": (str, ""),
    },
    "output": {
        "dir": (str, ""),
        "overwrite": (bool, False),
    },
}

_CHOICES = {
    ("training", "optimizer"): ("", "sgd", "adam", "adamw", "rmsprop"),
    ("training", "schedule"): ("", "constant", "cosine", "warmup_cosine"),
    ("training", "precision"): (
        "auto",
        "float32",
        "mixed_float16",
        "mixed_bfloat16",
    ),
    ("model", "recipe"): ("", "cifar10_fast", "cifar10_classic", "cifar10_airbench"),
    ("distribution", "strategy"): ("auto", "none", "mirrored", "data_parallel"),
    ("data", "color_mode"): ("rgb", "grayscale"),
    ("data", "service_mode"): ("distributed_epoch", "parallel_epochs"),
    ("data", "cache"): ("auto", "memory", "none"),
}


@dataclasses.dataclass
class RunConfig:
    """A checked run configuration: one plain dict per section.

    Every key of every section has a value (defaults filled in), so
    :meth:`to_toml` writes the fully resolved configuration that reproduces a run.

    Attributes:
        data: Where the data is: ``train`` (an image folder ``root/<class>/*``, a
            ``.npz`` with ``x`` and ``y``, or packed shards: a ``manifest.json`` or a
            ``*.tfrecord`` pattern, local or ``gs://``), ``validation``,
            ``validation_split``, ``image_size``, ``color_mode``, ``class_names``;
            ``service`` (``host:port`` of a tf.data service dispatcher that runs the
            input pipeline), ``service_mode``, ``service_timeout`` (seconds),
            ``shard_cache`` (local cache of ``gs://`` shards); ``cache`` (an image
            folder decoded once into memory: ``"auto"`` when the decoded images fit
            in ``cache_limit_gib``, ``"memory"`` always, ``"none"`` streams every
            epoch) and ``cache_limit_gib`` (``0``: a quarter of the machine's memory).
        model: One of ``recipe``, ``spec`` (a conv-stack spec) or ``backbone``,
            plus ``weights`` (backbones), ``width`` (``cifar10_fast``) and
            ``options`` (further keyword arguments of the named recipe's function,
            such as ``tta_level`` of ``cifar10_airbench``).
        training: ``epochs``, the global ``batch_size``, ``optimizer``,
            ``learning_rate``, ``schedule``, ``precision``, ``jit_compile``...
        distribution: ``strategy`` and the process layout.
        output: ``dir`` (a local folder or ``gs://bucket/prefix``) and ``overwrite``.

    Example:
        >>> cfg = RunConfig.from_dict({"data": {"train": "d.npz"},
        ...                            "model": {"spec": {"stages": [8]}},
        ...                            "output": {"dir": "run"}})
        >>> cfg.training["epochs"], cfg.distribution["strategy"]
        (10, 'auto')
    """

    data: dict
    model: dict
    training: dict
    distribution: dict
    output: dict
    #: ``"section.key"`` of every value the configuration set (the rest are defaults).
    given: frozenset = dataclasses.field(default=frozenset(), compare=False, repr=False)

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> RunConfig:
        """Check a nested mapping against the schema and fill in the defaults.

        Args:
            config: ``{section: {key: value}}`` as parsed from TOML.

        Returns:
            The configuration.

        Raises:
            ConfigError: On an unknown section or key (naming the closest valid
                one), a value of the wrong type (naming the expected type), a value
                outside its choices, or a missing required key.
        """
        if not isinstance(config, Mapping):
            raise ConfigError(f"a configuration must be a table, got {type(config).__name__}")
        for section in config:
            if section not in SCHEMA:
                raise ConfigError(_unknown(f"section [{section}]", section, SCHEMA))
        sections = {}
        set_keys = set()
        for section, fields in SCHEMA.items():
            given = config.get(section, {})
            if not isinstance(given, Mapping):
                raise ConfigError(f"[{section}] must be a table, got {type(given).__name__}")
            values = {}
            for key, value in given.items():
                if key not in fields:
                    raise ConfigError(_unknown(f"key {section}.{key}", key, fields))
                values[key] = _check_type(section, key, value)
                set_keys.add(f"{section}.{key}")
            for key, (_, default) in fields.items():
                values.setdefault(key, copy.deepcopy(default))
            sections[section] = values
        cfg = cls(**sections, given=frozenset(set_keys))
        cfg._check_values()
        return cfg

    def _check_values(self) -> None:
        for (section, key), choices in _CHOICES.items():
            value = getattr(self, section)[key]
            if value not in choices:
                raise ConfigError(
                    f"{section}.{key} = {value!r} is not one of "
                    f"{', '.join(repr(c) for c in choices if c)}"
                )
        if not self.data["train"]:
            raise ConfigError("data.train is required: an image folder or a .npz file")
        if not self.output["dir"]:
            raise ConfigError("output.dir is required: a local folder or gs://bucket/prefix")
        chosen = [k for k in ("recipe", "spec", "backbone") if self.model[k]]
        if len(chosen) != 1:
            raise ConfigError(
                "the [model] section needs exactly one of 'recipe', 'spec' or 'backbone', "
                f"got {chosen or 'none'}"
            )
        for key in ("epochs", "batch_size", "top_k"):
            if self.training[key] < 1:
                raise ConfigError(f"training.{key} must be positive, got {self.training[key]}")
        if not 0.0 <= self.data["validation_split"] < 1.0:
            raise ConfigError(
                f"data.validation_split must be in [0, 1), got {self.data['validation_split']}"
            )
        size = self.data["image_size"]
        if size and (len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size)):
            raise ConfigError(f"data.image_size must be [height, width], got {size}")
        if self.data["cache_limit_gib"] < 0:
            raise ConfigError(
                f"data.cache_limit_gib must be 0 (a quarter of the memory) or a positive "
                f"number of GiB, got {self.data['cache_limit_gib']}"
            )
        if self.model["options"] and not self.model["recipe"]:
            raise ConfigError(
                "model.options are keyword arguments of a named recipe; set model.recipe "
                f"or remove model.options ({', '.join(sorted(self.model['options']))})"
            )
        jit = self.training["jit_compile"]
        if isinstance(jit, str) and jit != "auto":
            raise ConfigError(f"training.jit_compile must be true, false or 'auto', got {jit!r}")

    def to_dict(self) -> dict[str, dict]:
        """The configuration as nested plain data."""
        return {section: copy.deepcopy(getattr(self, section)) for section in SCHEMA}

    def is_set(self, key: str) -> bool:
        """Whether the configuration set ``key`` (``"section.key"``) instead of its default.

        Example:
            >>> cfg = RunConfig.from_dict({"data": {"train": "d.npz"},
            ...                            "model": {"recipe": "cifar10_fast"},
            ...                            "training": {"epochs": 3}, "output": {"dir": "run"}})
            >>> cfg.is_set("training.epochs"), cfg.is_set("training.batch_size")
            (True, False)
        """
        return key in self.given

    def to_toml(self) -> str:
        """The fully resolved configuration as TOML text (read back by :func:`load_config`).

        Returns:
            The TOML document.
        """
        lines = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            for key, value in values.items():
                lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


def load_config(
    source: str | os.PathLike | Mapping[str, Any] | RunConfig,
    overrides: Sequence[str] = (),
) -> RunConfig:
    """Read a run configuration from a TOML file (or a mapping) and apply overrides.

    Args:
        source: A ``.toml`` path, a nested mapping, or a :class:`RunConfig`.
        overrides: ``"section.key=value"`` strings; the value is read as a TOML value
            (``3``, ``true``, ``[32, 32]``, ``"text"``) and as a plain string when it
            is not one.

    Returns:
        The checked configuration.

    Raises:
        ConfigError: If the file is missing or not TOML, or a key or value is wrong.

    Example:
        >>> cfg = load_config({"data": {"train": "d.npz"}, "model": {"recipe": "cifar10_fast"},
        ...                    "output": {"dir": "run"}}, ["training.epochs=2"])
        >>> cfg.training["epochs"]
        2
    """
    if isinstance(source, RunConfig):
        data = source.to_dict()
        if source.given:  # keep the defaults unset, so a recipe can still choose them
            data = {
                s: {k: v for k, v in values.items() if source.is_set(f"{s}.{k}")}
                for s, values in data.items()
            }
    elif isinstance(source, Mapping):
        data = copy.deepcopy(dict(source))
    else:
        path = pathlib.Path(source)
        if not path.is_file():
            raise ConfigError(f"configuration file not found: {path}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    for item in overrides:
        section, key, value = parse_override(item)
        if section not in SCHEMA:
            raise ConfigError(_unknown(f"section [{section}] in --set {item!r}", section, SCHEMA))
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        table[key] = value
    return RunConfig.from_dict(data)


def parse_override(item: str) -> tuple[str, str, Any]:
    """Split ``"section.key=value"`` and read the value as TOML.

    Args:
        item: The override.

    Returns:
        ``(section, key, value)``.

    Raises:
        ConfigError: If ``item`` is not ``section.key=value``.

    Example:
        >>> parse_override("training.epochs=3")
        ('training', 'epochs', 3)
    """
    name, sep, text = item.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"--set expects section.key=value (e.g. training.epochs=3), got {item!r}")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return section, key.strip(), value


def _unknown(what: str, name: str, valid) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {what}{hint} (valid: {', '.join(sorted(valid))})"


def _type_name(expected) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    names.update({list: "an array", dict: "a table"})
    if isinstance(expected, tuple):
        if expected == _NUMBER:
            return "a number"
        return " or ".join(names[t] for t in expected)
    return names[expected]


def _check_type(section: str, key: str, value: Any) -> Any:
    expected = SCHEMA[section][key][0]
    types = expected if isinstance(expected, tuple) else (expected,)
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise ConfigError(
            f"{section}.{key} must be {_type_name(expected)}, got {type(value).__name__} {value!r}"
        )
    if types == _NUMBER:
        value = float(value)
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(
            f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None
        )
        return "{ " + items + " }" if items else "{}"
    raise ConfigError(f"cannot write {value!r} ({type(value).__name__}) as TOML")
