"""Building a training recipe and compiling its model from a run configuration."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

import keras

from keras_cnnkit.errors import ConfigError
from keras_cnnkit.training.config import RunConfig
from keras_cnnkit.training.recipe import TrainingRecipe

logger = logging.getLogger("keras_cnnkit")


#: What each named recipe chooses for the training keys a configuration leaves unset.
#: The numbers that are arguments of the recipe function come from its signature.
#: ``cifar10_airbench`` trains with its own Nesterov SGD and piecewise-linear schedule
#: (``schedule = ""``); its ``learning_rate`` and ``weight_decay`` are in airbench's
#: units (per 1024 examples).
_RECIPE_CHOICES = {
    "cifar10_fast": {"optimizer": "sgd", "momentum": 0.9, "schedule": "warmup_cosine"},
    "cifar10_classic": {"optimizer": "rmsprop", "learning_rate": 1e-4},
    "cifar10_airbench": {"optimizer": "sgd"},
}
_RECIPE_ARGUMENTS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "momentum",
    "label_smoothing",
    "weight_decay",
    "warmup_fraction",
)
#: Recipe-function arguments set from elsewhere than ``model.options``.
_NOT_OPTIONS = {
    *_RECIPE_ARGUMENTS,
    "peak_learning_rate",
    "width",
    "num_classes",
    "input_shape",
    "precision",
    "seed",
}


def _recipe_function(name: str):
    from keras_cnnkit.training import cifar10

    return {
        "cifar10_fast": cifar10.cifar10_fast_recipe,
        "cifar10_classic": cifar10.cifar10_classic_recipe,
        "cifar10_airbench": cifar10.cifar10_airbench_recipe,
    }[name]


def _recipe_options(name: str, given: Mapping) -> dict:
    """``model.options`` checked against the recipe function, its defaults filled in."""
    import difflib
    import inspect

    parameters = inspect.signature(_recipe_function(name)).parameters
    defaults = {k: p.default for k, p in parameters.items() if k not in _NOT_OPTIONS}
    options = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            close = difflib.get_close_matches(key, list(defaults), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            valid = ", ".join(sorted(defaults)) or "none"
            raise ConfigError(
                f"model.options.{key}: {name} has no such option{hint} (valid: {valid})"
            )
        default = defaults[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise ConfigError(
                f"model.options.{key} must be {type(default).__name__} like its default "
                f"{default!r}, got {type(value).__name__} {value!r}"
            )
        options[key] = value
    return options


def resolve_config(cfg: RunConfig) -> RunConfig:
    """Fill the training keys a configuration left unset with its named recipe's choices.

    A run naming ``model.recipe`` trains with the recipe's own batch size, epochs,
    optimizer, schedule, weight decay and label smoothing, except where the
    configuration sets them, and ``model.options`` (the recipe function's other
    arguments, such as ``tta_level``) are checked against the recipe and completed
    with its defaults; the result holds the values the run uses, so its
    ``to_toml`` reproduces the run.

    Args:
        cfg: The configuration as read.

    Returns:
        The resolved configuration (``cfg`` itself without a named recipe).

    Raises:
        ConfigError: On an option the recipe does not take or of the wrong type, or
            ``cifar10_airbench`` with another optimizer or schedule.
    """
    name = cfg.model["recipe"]
    if not name:
        return cfg
    import inspect

    parameters = inspect.signature(_recipe_function(name)).parameters
    choices = {k: parameters[k].default for k in _RECIPE_ARGUMENTS if k in parameters}
    choices.update(_RECIPE_CHOICES[name])
    training = dict(cfg.training)
    for key, value in choices.items():
        if not cfg.is_set(f"training.{key}"):
            training[key] = value
    if name == "cifar10_fast" and not cfg.is_set("training.learning_rate"):
        training["learning_rate"] = 0.4 * training["batch_size"] / 512  # linear scaling
    if name == "cifar10_airbench" and (
        training["optimizer"] != "sgd" or training["schedule"] != ""
    ):
        raise ConfigError(
            "model.recipe = 'cifar10_airbench' trains with its own SGD and learning-rate "
            "schedule (learning_rate in its units, per 1024 examples): leave "
            f"training.optimizer and training.schedule unset (got optimizer = "
            f"{training['optimizer']!r}, schedule = {training['schedule']!r})"
        )
    model = dict(cfg.model, options=_recipe_options(name, cfg.model["options"]))
    given = cfg.given | {f"training.{k}" for k in training if training[k] != cfg.training[k]}
    if model["options"] != cfg.model["options"]:
        given |= {"model.options"}
    return dataclasses.replace(cfg, model=model, training=training, given=frozenset(given))


def build_recipe(cfg: RunConfig, input_shape: Sequence[int], num_classes: int) -> TrainingRecipe:
    """Build the model and its training recipe from a resolved configuration.

    Call it inside the distribution plan's scope, with the configuration from
    :func:`resolve_config`.

    Args:
        cfg: The run configuration.
        input_shape: ``(height, width, channels)`` of the images.
        num_classes: Number of classes.

    Returns:
        The recipe (uncompiled model).

    Raises:
        ConfigError: If the model section cannot be built.
    """
    from keras_cnnkit.hardware import resolve_precision
    from keras_cnnkit.training.cifar10 import flip_translate

    m, t = cfg.model, cfg.training
    precision = resolve_precision(t["precision"])
    common = {
        "epochs": t["epochs"],
        "batch_size": t["batch_size"],
        "num_classes": num_classes,
        "input_shape": tuple(input_shape),
        "precision": precision,
        "seed": t["seed"],
    }
    if m["recipe"] == "cifar10_fast":
        recipe = _recipe_function("cifar10_fast")(
            **common,
            width=m["width"],
            peak_learning_rate=t["learning_rate"],
            **m["options"],
            warmup_fraction=t["warmup_fraction"],
            weight_decay=t["weight_decay"],
            label_smoothing=t["label_smoothing"],
        )
    elif m["recipe"] == "cifar10_classic":
        recipe = _recipe_function("cifar10_classic")(**common)
        recipe.label_smoothing = t["label_smoothing"]
    elif m["recipe"] == "cifar10_airbench":
        recipe = _recipe_function("cifar10_airbench")(
            **common,
            learning_rate=t["learning_rate"],
            momentum=t["momentum"],
            weight_decay=t["weight_decay"],
            label_smoothing=t["label_smoothing"],
            warmup_fraction=t["warmup_fraction"],
            **m["options"],
        )
    else:
        if m["spec"]:
            from keras_cnnkit.models import conv_stack

            model = conv_stack(
                m["spec"], input_shape=input_shape, num_classes=num_classes, dtype=precision
            )
            name = "conv_stack"
        else:
            model = _backbone_model(m, input_shape, num_classes, precision)
            name = m["backbone"]
        recipe = TrainingRecipe(
            name=name,
            model=model,
            make_optimizer=_optimizer_factory(t["optimizer"] or "adam", t),
            make_schedule=_schedule_factory(t["schedule"] or "constant", t),
            epochs=t["epochs"],
            batch_size=t["batch_size"],
            label_smoothing=t["label_smoothing"],
            augmentation=flip_translate(0.1, seed=t["seed"]),
            precision=precision,
            seed=t["seed"],
        )
    if m["recipe"] in ("cifar10_fast", "cifar10_classic"):
        own = _RECIPE_CHOICES[m["recipe"]]
        if t["optimizer"] != own["optimizer"] or t["momentum"] != own.get("momentum", 0.9):
            recipe.make_optimizer = _optimizer_factory(t["optimizer"] or "adam", t)
        elif m["recipe"] == "cifar10_classic" and t["weight_decay"]:
            recipe.make_optimizer = _optimizer_factory("rmsprop", t)
        if t["schedule"] != own.get("schedule", "") or (
            m["recipe"] == "cifar10_classic" and t["learning_rate"] != own["learning_rate"]
        ):
            recipe.make_schedule = _schedule_factory(t["schedule"] or "constant", t)
    if not t["augment"]:
        recipe.augmentation = ()
        if m["recipe"] == "cifar10_airbench":  # its flips and shifts are in its batches
            recipe.translate, recipe.flip = 0, False
    recipe.top_k = t["top_k"]
    recipe.jit_compile = None if t["jit_compile"] == "auto" else t["jit_compile"]
    return recipe


def _backbone_model(m: Mapping, input_shape, num_classes: int, precision: str) -> keras.Model:
    try:
        from keras_cnnkit.backbones import build_classifier
    except ImportError as exc:  # pragma: no cover - the module ships with the package
        raise ConfigError(f"model.backbone needs keras_cnnkit.backbones: {exc}") from exc
    weights = None if m["weights"] in ("", "none") else m["weights"]
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return build_classifier(
            m["backbone"], num_classes, tuple(input_shape), weights=weights, freeze_backbone=False
        )
    finally:
        keras.config.set_dtype_policy(previous)


def _optimizer_factory(name: str, t: Mapping):
    wd = t["weight_decay"] or None

    def make(lr):
        if name == "sgd":
            return keras.optimizers.SGD(lr, momentum=t["momentum"], nesterov=True, weight_decay=wd)
        if name == "adam":
            return keras.optimizers.Adam(lr, weight_decay=wd)
        if name == "adamw":
            return keras.optimizers.AdamW(lr, weight_decay=t["weight_decay"] or 1e-4)
        return keras.optimizers.RMSprop(lr, weight_decay=wd)

    return make


def _schedule_factory(name: str, t: Mapping):
    peak = t["learning_rate"] or 1e-3

    def make(total_steps: int):
        if name == "constant":
            return peak
        if name == "cosine":
            return keras.optimizers.schedules.CosineDecay(peak, decay_steps=max(1, total_steps))
        warmup = max(1, int(total_steps * t["warmup_fraction"]))
        return keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps=max(1, total_steps - warmup),
            warmup_target=peak,
            warmup_steps=warmup,
        )

    return make
