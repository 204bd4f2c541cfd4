"""One training run from a configuration: data, model, distribution, checkpoints, outputs."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io as _stdio
import json
import logging
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from keras_cnnkit.errors import ConfigError, DataError, MissingDependencyError
from keras_cnnkit.training import resume
from keras_cnnkit.training.config import RunConfig, load_config
from keras_cnnkit.training.distribute import plan_distribution
from keras_cnnkit.training.recipe import TrainingRecipe

logger = logging.getLogger("keras_cnnkit")

#: Files a run writes in its output location.
OUTPUT_FILES = {
    "model": "model.keras",
    "best_model": "best.keras",
    "history_json": "history.json",
    "history_csv": "history.csv",
    "config": "config.toml",
    "curves": "curves.png",
    "summary": "summary.json",
}


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` did and wrote.

    Attributes:
        model: The trained model.
        history: One dict per epoch of the whole run (resumed sessions included).
        output_dir: Where the outputs are.
        files: Output name -> path or URI of each file written.
        initial_epoch: Epochs already done when this session started (0 unless resumed).
        best_epoch: The epoch of the best model (1-based), or ``None``.
        monitor: The value that picked the best model.
        distribution: The distribution plan, as plain data.
        seconds: Wall time of this session.
        weights_sha256: sha256 of the final weights (equal on every process of a job).
    """

    model: keras.Model
    history: list[dict[str, float]]
    output_dir: str
    files: dict[str, str]
    initial_epoch: int
    best_epoch: int | None
    monitor: str
    distribution: dict
    seconds: float
    weights_sha256: str = ""

    def summary(self) -> str:
        """A few lines describing the run: epochs, final and best scores, outputs."""
        last = self.history[-1] if self.history else {}
        lines = [
            f"trained {len(self.history)} epochs"
            + (f" (resumed at epoch {self.initial_epoch + 1})" if self.initial_epoch else "")
            + f" in {self.seconds:.1f} s, distribution {self.distribution['strategy']}"
            + f" ({self.distribution['num_replicas']} replica(s))",
        ]
        scores = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k != "epoch")
        if scores:
            lines.append(f"last epoch: {scores}")
        if self.best_epoch is not None:
            best = self.history[self.best_epoch - 1]
            lines.append(f"best {self.monitor} {best[self.monitor]:.4f} at epoch {self.best_epoch}")
        if self.distribution.get("num_processes", 1) > 1:
            lines.append(
                f"process {self.distribution['process_id']}: weights sha256 "
                f"{self.weights_sha256[:16]}"
            )
        lines.append(f"outputs in {self.output_dir}")
        return "\n".join(lines)


def train(
    config: str | os.PathLike | Mapping[str, Any] | RunConfig,
    overrides: Sequence[str] = (),
    *,
    verbose: int | str = "auto",
) -> TrainResult:
    """Train a model as a configuration says, resuming a killed run, and write its outputs.

    The output location (``output.dir``, a local folder or ``gs://bucket/prefix``)
    receives the final model (``model.keras``) and the best model by the monitored
    validation metric (``best.keras``), both saved with
    :func:`keras_cnnkit.io.save` and their class names and configuration as
    metadata; the history (``history.json``, ``history.csv``); the fully resolved
    configuration (``config.toml``, which reproduces the run); ``summary.json``; and
    ``curves.png`` when matplotlib is installed. The training state is checkpointed
    every epoch (and every ``training.checkpoint_every_steps`` steps) with Keras'
    ``BackupAndRestore``; running the same configuration again after a kill resumes
    from it. Only process 0 writes.

    Args:
        config: A TOML file, a nested mapping or a :class:`RunConfig`.
        overrides: ``"section.key=value"`` strings applied over ``config``.
        verbose: Keras' ``fit`` verbosity.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: If the configuration is wrong, or ``output.dir`` holds a finished
            run and ``output.overwrite`` is false.
        DataError: If the data is missing or malformed (names the path).
        DistributionError: If the distribution cannot run here.

    Example:
        >>> result = train("run.toml", ["training.epochs=2"])  # doctest: +SKIP
        >>> print(result.summary())  # doctest: +SKIP
    """
    start = time.perf_counter()
    cfg = load_config(config, overrides)
    plan = plan_distribution(cfg.distribution)
    try:
        return _run(cfg, plan, start, verbose)
    finally:
        plan.close()


def _run(cfg: RunConfig, plan, start: float, verbose) -> TrainResult:
    out = _Output(cfg.output["dir"], plan.process_id)
    out.prepare(cfg.output["overwrite"])
    out.restore_state()  # before anything reads the training state
    keras.utils.set_random_seed(cfg.training["seed"])

    t = cfg.training
    data = load_data(cfg.data, batch_size=t["batch_size"], seed=t["seed"], shuffle=t["shuffle"])
    input_shape = data.input_shape
    num_classes = len(data.class_names)
    monitor = t["monitor"] or ("val_accuracy" if data.has_validation else "accuracy")

    with plan.scope():
        recipe = build_recipe(cfg, input_shape, num_classes)
        compile_recipe(recipe, cfg, data.num_train, num_classes)
    model = recipe.model

    def metadata(entry: dict | None) -> dict:
        return {
            "class_names": list(data.class_names),
            "training": {
                **recipe.metadata(),
                "config": cfg.to_dict(),
                "distribution": plan.as_dict(),
                "epoch": entry["epoch"] if entry else None,
                "scores": entry or {},
            },
        }

    def save_best(m: keras.Model, entry: dict) -> None:
        out.save_model(m, "best_model", metadata(entry))

    # Every process keeps its own training state; saving runs collectives under a
    # multi-process distribution, so every process saves (only process 0 keeps the files).
    recorder = resume.RunRecorder(out.checkpoint_dir / resume.PARTIAL_HISTORY, monitor, save_best)
    every = t["checkpoint_every_steps"]
    backup = resume.TrainingBackup(
        str(out.checkpoint_dir), save_freq=every or "epoch", on_save=out.mirror_state
    )
    initial = resume.checkpoint_epoch(out.checkpoint_dir) or 0
    if initial:
        logger.info("resuming %s at epoch %d of %d", cfg.output["dir"], initial + 1, t["epochs"])

    train_ds, val_ds = data.datasets(recipe)
    if plan.num_processes > 1:
        train_ds = process_shard(train_ds, t["batch_size"], plan.num_processes, plan.process_id)
        if val_ds is not None:
            val_ds = process_shard(val_ds, None, plan.num_processes, plan.process_id)
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=t["epochs"],
        callbacks=[recorder, backup],
        shuffle=False,  # the dataset shuffles itself, with the seed
        verbose=verbose,
    )
    recorder.truncate(t["epochs"])
    history = recorder.entries
    if len(history) != t["epochs"] or [e["epoch"] for e in history] != list(
        range(1, t["epochs"] + 1)
    ):
        raise DataError(
            f"the history in {out.checkpoint_dir} does not cover epochs 1..{t['epochs']} "
            f"(found {[e['epoch'] for e in history]}); start again with output.overwrite = true"
        )
    best = recorder.best()
    result = TrainResult(
        model=model,
        history=history,
        output_dir=cfg.output["dir"],
        files={},
        initial_epoch=initial,
        best_epoch=best["epoch"] if best else None,
        monitor=monitor,
        distribution=plan.as_dict(),
        seconds=time.perf_counter() - start,
        weights_sha256=_weights_digest(model),
    )
    out.save_model(model, "model", metadata(history[-1]))
    if plan.is_chief:
        out.write_text("history_json", json.dumps(history, indent=1) + "\n")
        out.write_text("history_csv", history_csv(history))
        out.write_text("config", cfg.to_toml())
        out.write_text(
            "summary",
            json.dumps(
                {
                    "epochs": len(history),
                    "initial_epoch": initial,
                    "best_epoch": result.best_epoch,
                    "monitor": monitor,
                    "last": history[-1],
                    "distribution": plan.as_dict(),
                    "precision": recipe.precision,
                    "seconds": round(result.seconds, 3),
                    "weights_sha256": result.weights_sha256,
                },
                indent=1,
            )
            + "\n",
        )
        png = plot_history(history)
        if png is not None:
            out.write_bytes("curves", png)
        result.files = dict(out.written)
    out.finish()
    return result


def process_shard(ds, global_batch: int | None, num: int, pid: int):
    """Take one process's disjoint slice of every global batch of ``ds``.

    Process ``p`` of ``n`` takes rows ``[p * b / n, (p + 1) * b / n)`` of each global
    batch of ``b`` rows. Batches that do not split evenly across the processes are
    dropped, so every process runs the same number of steps.

    Args:
        ds: A dataset of ``(images, labels)`` global batches.
        global_batch: Keep only batches of exactly this size (``None``: any size that
            ``num`` divides).
        num: Number of processes.
        pid: This process's index.

    Returns:
        The dataset of local batches.
    """
    import tensorflow as tf

    def keep(x, y):
        n = tf.shape(x)[0]
        ok = tf.equal(n % num, 0)
        return tf.logical_and(ok, tf.equal(n, global_batch)) if global_batch else ok

    def take(x, y):
        local = tf.shape(x)[0] // num
        return x[pid * local : (pid + 1) * local], y[pid * local : (pid + 1) * local]

    return ds.filter(keep).map(take)


def _weights_digest(model: keras.Model) -> str:
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return digest.hexdigest()


@dataclasses.dataclass
class TrainData:
    """The training and validation data of a run, before batching.

    Arrays (from a ``.npz``) are batched by the recipe; an image folder streams
    through :func:`keras_cnnkit.preprocessing.from_directory`, already batched.

    Attributes:
        class_names: Names of the classes, in label order.
        input_shape: ``(height, width, channels)`` of the model input.
        num_train: Number of training images.
        has_validation: Whether there is validation data.
        arrays: ``(x, y, x_val, y_val)`` for array data, else ``None``.
        streams: ``(train, validation)`` datasets for folder data, else ``None``.
        shuffle: Shuffle the training data every epoch.
    """

    class_names: list[str]
    input_shape: tuple[int, ...]
    num_train: int
    has_validation: bool
    arrays: tuple | None = None
    streams: tuple | None = None
    shuffle: bool = True

    def datasets(self, recipe: TrainingRecipe):
        """``(train, validation)`` datasets of global batches (validation may be ``None``).

        Args:
            recipe: Supplies the batch size, the seed and the training augmentation.

        Returns:
            The two datasets.
        """
        if self.arrays is not None:
            x, y, x_val, y_val = self.arrays
            train_ds = train_dataset(recipe, x, y, shuffle=self.shuffle)
            val_ds = None
            if x_val is not None:
                val_ds = recipe.dataset(x_val, y_val, batch_size=max(recipe.batch_size, 256))
            return train_ds, val_ds
        train_ds, val_ds = self.streams
        return _augmented(train_ds, recipe.augmentation), val_ds


def load_data(
    config: Mapping[str, Any], *, batch_size: int = 32, seed: int = 0, shuffle: bool = True
) -> TrainData:
    """Load the ``[data]`` section: an image folder or a ``.npz``, and the validation data.

    A ``.npz`` holds ``x`` (images) and ``y`` (integer labels), and optionally
    ``class_names``. An image folder holds one subfolder per class and is read by
    :func:`keras_cnnkit.preprocessing.from_directory` (files checked up front,
    decoded in parallel, resized to ``image_size`` or to the size of its first
    image).

    Args:
        config: The ``[data]`` section.
        batch_size: Global batch size of folder data.
        seed: Seed of shuffling and of the validation split.
        shuffle: Shuffle the training data every epoch.

    Returns:
        The data.

    Raises:
        DataError: If a path is missing or the data is malformed (names the path).
    """
    train = config["train"]
    for key in ("train", "validation"):
        if str(config.get(key, "")).startswith("gs://"):
            raise DataError(
                f"data.{key} = {config[key]!r}: data is read from local paths; copy it first "
                "(cnnkit download URI DEST)"
            )
    if pathlib.Path(train).suffix != ".npz":
        return _load_folders(config, batch_size, seed, shuffle)
    x, y, names = _load_npz(train, "data.train")
    if config.get("class_names"):
        names = [str(n) for n in config["class_names"]]
    x_val = y_val = None
    if config.get("validation"):
        x_val, y_val, val_names = _load_npz(config["validation"], "data.validation")
        if val_names and names and list(val_names) != list(names):
            raise DataError(
                f"data.validation classes {list(val_names)} differ from data.train classes "
                f"{list(names)}"
            )
        if x_val.shape[1:] != x.shape[1:]:
            raise DataError(
                f"data.validation images are {x_val.shape[1:]}, training images {x.shape[1:]}"
            )
    elif config.get("validation_split"):
        n = len(x)
        k = int(round(config["validation_split"] * n))
        if not 0 < k < n:
            raise DataError(
                f"data.validation_split = {config['validation_split']} leaves an empty split "
                f"of {n} images"
            )
        order = np.random.default_rng(seed).permutation(n)
        x_val, y_val = x[order[n - k :]], y[order[n - k :]]
        x, y = x[order[: n - k]], y[order[: n - k]]
    num = int(max(y.max(), y_val.max() if y_val is not None else 0)) + 1
    if not names:
        names = [str(i) for i in range(num)]
    if num > len(names):
        raise DataError(f"labels go up to {num - 1} but there are only {len(names)} class names")
    return TrainData(
        class_names=list(names),
        input_shape=tuple(int(s) for s in x.shape[1:]),
        num_train=len(x),
        has_validation=x_val is not None,
        arrays=(x, y, x_val, y_val),
        shuffle=shuffle,
    )


def _load_npz(path: str, key: str):
    p = pathlib.Path(path)
    if not p.is_file():
        raise DataError(f"{key}: data file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{key}: cannot read {p}: {exc}") from None
    if "x" not in arrays or "y" not in arrays:
        raise DataError(f"{key}: {p} must hold arrays 'x' and 'y', found {sorted(arrays)}")
    x, y = arrays["x"], arrays["y"].reshape(-1).astype("int32")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or len(x) != len(y) or len(x) == 0:
        raise DataError(
            f"{key}: {p} must hold x (n, height, width, channels) and y (n,), got "
            f"{x.shape} and {y.shape}"
        )
    names = [str(n) for n in arrays["class_names"]] if "class_names" in arrays else []
    return x, y, names


def _load_folders(config: Mapping, batch_size: int, seed: int, shuffle: bool) -> TrainData:
    from keras_cnnkit.preprocessing import from_directory

    root = pathlib.Path(config["train"])
    if not root.is_dir():
        raise DataError(f"data.train: data folder not found: {root}")
    size = tuple(config.get("image_size") or ()) or _first_image_size(root)
    channels = 1 if config.get("color_mode") == "grayscale" else 3
    common = {
        "image_size": size,
        "color_mode": config.get("color_mode", "rgb"),
        "batch_size": batch_size,
        "seed": seed,
    }
    names = [str(n) for n in config.get("class_names") or []] or None
    val_ds = None
    if config.get("validation"):
        val_root = pathlib.Path(config["validation"])
        if not val_root.is_dir():
            raise DataError(f"data.validation: data folder not found: {val_root}")
        train_ds = from_directory(root, class_names=names, shuffle=shuffle, **common)
        val_ds = from_directory(val_root, class_names=train_ds.class_names, shuffle=False, **common)
    elif config.get("validation_split"):
        train_ds, val_ds = from_directory(
            root,
            class_names=names,
            shuffle=shuffle,
            validation_split=config["validation_split"],
            subset="both",
            **common,
        )
    else:
        train_ds = from_directory(root, class_names=names, shuffle=shuffle, **common)
    num_train = len(train_ds.file_paths)
    return TrainData(
        class_names=list(train_ds.class_names),
        input_shape=(int(size[0]), int(size[1]), channels),
        num_train=num_train,
        has_validation=val_ds is not None,
        streams=(train_ds, val_ds),
        shuffle=shuffle,
    )


def _first_image_size(root: pathlib.Path) -> tuple[int, int]:
    from PIL import Image

    from keras_cnnkit.preprocessing import IMAGE_EXTENSIONS

    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name.lower().endswith(IMAGE_EXTENSIONS):
            try:
                with Image.open(path) as img:
                    return img.size[1], img.size[0]
            except OSError:
                continue
    raise DataError(f"data.train: no readable images under {root}")


def _augmented(ds, augmentation):
    if not augmentation:
        return ds
    import tensorflow as tf

    layers = list(augmentation)

    def augment(images, labels):
        images = tf.cast(images, tf.float32)
        for layer in layers:
            images = layer(images, training=True)
        return images, labels

    return ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)


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


def train_dataset(recipe: TrainingRecipe, x, y, *, shuffle: bool = True):
    """The training ``tf.data.Dataset``: global batches, augmented, shuffled unless asked not to.

    Args:
        recipe: The recipe (batch size, augmentation, seed).
        x: Training images.
        y: Training labels.
        shuffle: Shuffle every epoch with the recipe's seed.

    Returns:
        The dataset of ``(images, labels)`` batches.
    """
    if shuffle:
        return recipe.dataset(x, y, training=True)
    return _augmented(recipe.dataset(x, y), recipe.augmentation)


def history_csv(history: Sequence[Mapping[str, float]]) -> str:
    """The history as CSV text: one row per epoch, one column per logged value."""
    columns = ["epoch"] + sorted({k for e in history for k in e} - {"epoch"})
    buf = _stdio.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for entry in history:
        writer.writerow(entry)
    return buf.getvalue()


def plot_history(history: Sequence[Mapping[str, float]]) -> bytes | None:
    """Training curves (loss and accuracy, training and validation) as PNG bytes.

    Returns:
        The PNG, or ``None`` when matplotlib is not installed.
    """
    from keras_cnnkit._optional import require

    try:
        require("matplotlib", extra="plot")
    except MissingDependencyError:
        logger.info("matplotlib is not installed: no training curves plotted")
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = [e["epoch"] for e in history]
    panels = [k for k in ("loss", "accuracy") if any(k in e for e in history)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, key in zip(axes[0], panels):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            values = [e.get(name, float("nan")) for e in history]
            if any(np.isfinite(values)):
                ax.plot(epochs, values, style, marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    buf = _stdio.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


class _Output:
    """The output location: a local folder, or a gs:// prefix staged in a local folder.

    For a ``gs://`` location the training state is also copied to the bucket after
    each checkpoint, alternating between two folders (``checkpoints/a`` and
    ``checkpoints/b``), each complete only once its manifest is written; a run started
    again on another machine downloads the newest complete one and resumes from it.
    """

    SLOTS = ("a", "b")

    def __init__(self, location: str, process_id: int = 0):
        self.location = location.rstrip("/") if location.startswith("gs://") else location
        self.remote = location.startswith("gs://")
        self.chief = process_id == 0
        key = hashlib.sha256(self.location.encode()).hexdigest()[:16]
        cache = pathlib.Path(
            os.environ.get("CNNKIT_RUN_CACHE")
            or os.path.join(os.path.expanduser("~"), ".cache", "keras_cnnkit", "runs")
        )
        self.local = cache / key if self.remote else pathlib.Path(location)
        self.checkpoint_dir = self.local / resume.CHECKPOINT_DIR
        if not self.chief:  # other processes keep their training state apart, locally
            self.checkpoint_dir = cache / key / f"process-{process_id}"
        self.written: dict[str, str] = {}
        self._slot: str | None = None  # the remote slot holding the newest state

    def uri(self, name: str) -> str:
        return f"{self.location}/{name}" if self.remote else str(self.local / name)

    def _slot_uri(self, slot: str) -> str:
        return f"{self.location}/{resume.CHECKPOINT_DIR}/{slot}"

    def prepare(self, overwrite: bool) -> None:
        if not self.chief:
            return
        if self.local.exists() and not self.local.is_dir():
            raise ConfigError(f"output.dir {self.location!r} exists and is not a folder")
        finished = (self.local / OUTPUT_FILES["summary"]).exists()
        if self.remote and not finished:
            from keras_cnnkit.io import gcs

            finished = gcs.exists(self.uri(OUTPUT_FILES["summary"]))
        if overwrite:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
            for name in OUTPUT_FILES.values():
                for path in (self.local / name, self.local / (name + ".json")):
                    path.unlink(missing_ok=True)
            self._delete_remote_state()
        elif finished and not self.checkpoint_dir.exists():
            raise ConfigError(
                f"output.dir {self.location!r} already holds a finished run; choose another "
                "folder or set output.overwrite = true (--set output.overwrite=true)"
            )
        self.local.mkdir(parents=True, exist_ok=True)

    def restore_state(self) -> None:
        """Take the newest complete remote training state when it is ahead of the local one."""
        if not (self.remote and self.chief):
            return
        from keras_cnnkit.errors import StorageError
        from keras_cnnkit.io import _files, gcs

        remote = {}  # slot -> (progress, downloaded folder), complete slots only
        for slot in self.SLOTS:
            scratch = self.local / f".{resume.CHECKPOINT_DIR}-{slot}.download"
            shutil.rmtree(scratch, ignore_errors=True)
            try:
                gcs.download(self._slot_uri(slot), scratch, overwrite=True, progress=False)
            except StorageError:  # absent, or its upload never finished
                shutil.rmtree(scratch, ignore_errors=True)
                continue
            progress = resume.checkpoint_progress(scratch)
            if progress is None:
                shutil.rmtree(scratch, ignore_errors=True)
            else:
                remote[slot] = (progress, scratch)
        if not remote:
            return
        # The next copy goes to the other slot, so the newest remote state survives it.
        self._slot = max(remote, key=lambda slot: remote[slot][0])
        progress, scratch = remote.pop(self._slot)
        for _, other in remote.values():
            shutil.rmtree(other, ignore_errors=True)
        local = resume.checkpoint_progress(self.checkpoint_dir)
        if local is not None and local >= progress:
            shutil.rmtree(scratch, ignore_errors=True)
            return
        _files.replace_dir(scratch, self.checkpoint_dir)
        logger.info("restored the training state from %s", self._slot_uri(self._slot))

    def mirror_state(self) -> None:
        """Copy the training state just written to the remote slot not holding the newest."""
        if not (self.remote and self.chief):
            return
        from keras_cnnkit.io import gcs

        slot = "b" if self._slot == "a" else "a"
        gcs.upload(self.checkpoint_dir, self._slot_uri(slot), overwrite=True, progress=False)
        self._slot = slot

    def _delete_remote_state(self) -> None:
        if not (self.remote and self.chief):
            return
        from keras_cnnkit.io import gcs

        for slot in self.SLOTS:
            gcs.delete(self._slot_uri(slot), folder=True)
        self._slot = None

    def save_model(self, model: keras.Model, key: str, metadata: dict) -> None:
        from keras_cnnkit import io as ckio

        if not self.chief:
            with tempfile.TemporaryDirectory() as scratch:
                ckio.save(model, pathlib.Path(scratch) / "model.keras", metadata)
            return
        target = self.uri(OUTPUT_FILES[key])
        ckio.save(model, target, metadata, overwrite=True)
        self.written[key] = target

    def write_text(self, key: str, text: str, name: str | None = None) -> None:
        self.write_bytes(key, text.encode("utf-8"), name)

    def write_bytes(self, key: str, data: bytes, name: str | None = None) -> None:
        name = name or OUTPUT_FILES[key]
        path = self.local / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        if self.remote:
            from keras_cnnkit.io import upload

            upload(path, self.uri(name), overwrite=True, progress=False)
        self.written[key] = self.uri(name)

    def finish(self) -> None:
        """Drop the training state once every output is written."""
        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        self._delete_remote_state()
