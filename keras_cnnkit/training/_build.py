"""Building a training recipe and compiling its model from a run configuration."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import keras

from keras_cnnkit.errors import ConfigError
from keras_cnnkit.training.config import RunConfig
from keras_cnnkit.training.recipe import TrainingRecipe

logger = logging.getLogger("keras_cnnkit")


def build_recipe(cfg: RunConfig, input_shape: Sequence[int], num_classes: int) -> TrainingRecipe:
    """Build the model and its training recipe from a configuration.

    Call it inside the distribution plan's scope.

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
    from keras_cnnkit.training.cifar10 import (
        cifar10_classic_recipe,
        cifar10_fast_recipe,
        flip_translate,
    )

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
        extra = {"width": m["width"], "label_smoothing": t["label_smoothing"] or 0.2}
        if t["learning_rate"] and not t["schedule"]:
            extra["peak_learning_rate"] = t["learning_rate"]
        recipe = cifar10_fast_recipe(**common, **extra)
    elif m["recipe"] == "cifar10_classic":
        recipe = cifar10_classic_recipe(**common)
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
    if m["recipe"]:
        if t["optimizer"]:
            recipe.make_optimizer = _optimizer_factory(t["optimizer"], t)
        if t["schedule"] or (t["learning_rate"] and m["recipe"] != "cifar10_fast"):
            recipe.make_schedule = _schedule_factory(t["schedule"] or "constant", t)
    if not t["augment"]:
        recipe.augmentation = ()
    return recipe


def compile_recipe(
    recipe: TrainingRecipe, cfg: RunConfig, num_examples: int, num_classes: int
) -> keras.Model:
    """Compile the recipe's model with its optimizer, schedule, loss and metrics.

    Args:
        recipe: The recipe from :func:`build_recipe`.
        cfg: The run configuration (``jit_compile``, ``top_k``).
        num_examples: Training-set size (the schedule's length).
        num_classes: Number of classes.

    Returns:
        The compiled model.
    """
    from keras_cnnkit.hardware import detect_hardware
    from keras_cnnkit.training.losses import SparseCategoricalCrossentropy

    t = cfg.training
    total = recipe.steps_per_epoch(num_examples) * t["epochs"]
    optimizer = recipe.make_optimizer(recipe.make_schedule(total))
    if recipe.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    jit = t["jit_compile"]
    if jit == "auto":
        info = detect_hardware()
        jit = False if (info.backend == "tensorflow" and info.device == "cpu") else "auto"
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    k = t["top_k"]
    if 1 < k < num_classes:
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=k, name=f"top{k}_accuracy"))
    recipe.model.compile(
        optimizer=optimizer,
        loss=SparseCategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=metrics,
        jit_compile=jit,
    )
    return recipe.model


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
