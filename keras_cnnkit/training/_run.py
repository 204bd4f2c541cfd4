"""One training run from a configuration: data, model, distribution, checkpoints, outputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from keras_cnnkit.errors import DataError
from keras_cnnkit.training import resume
from keras_cnnkit.training._build import build_recipe, resolve_config
from keras_cnnkit.training._data import load_data
from keras_cnnkit.training._outputs import RunOutput, history_csv, plot_history
from keras_cnnkit.training.config import RunConfig, load_config
from keras_cnnkit.training.distribute import plan_distribution, process_shard

logger = logging.getLogger("keras_cnnkit")


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
    cfg = resolve_config(load_config(config, overrides))
    plan = plan_distribution(cfg.distribution)
    try:
        return _run(cfg, plan, start, verbose)
    finally:
        plan.close()


def _run(cfg: RunConfig, plan, start: float, verbose) -> TrainResult:
    out = RunOutput(cfg.output["dir"], plan.process_id)
    out.prepare(cfg.output["overwrite"])
    out.restore_state()  # before anything reads the training state
    out.commit_best()  # a best model staged before a kill: kept if its epoch was saved
    keras.utils.set_random_seed(cfg.training["seed"])

    t = cfg.training
    data = load_data(cfg.data, batch_size=t["batch_size"], seed=t["seed"], shuffle=t["shuffle"])
    input_shape = data.input_shape
    num_classes = len(data.class_names)
    monitor = t["monitor"] or ("val_accuracy" if data.has_validation else "accuracy")

    with plan.scope():
        recipe = build_recipe(cfg, input_shape, num_classes)
        recipe.compile(data.num_train)
    model = recipe.model

    def metadata(entry: dict | None) -> dict:
        return {
            "class_names": list(data.class_names),
            "input_preprocessing": data.input_preprocessing,
            "training": {
                **recipe.metadata(),
                "config": cfg.to_dict(),
                "distribution": plan.as_dict(),
                "epoch": entry["epoch"] if entry else None,
                "scores": entry or {},
            },
        }

    def save_best(m: keras.Model, entry: dict) -> None:
        out.stage_best(m, metadata(entry))  # best.keras once this epoch's state is saved

    # Every process keeps its own training state; saving runs collectives under a
    # multi-process distribution, so every process saves (only process 0 keeps the files).
    recorder = resume.RunRecorder(out.checkpoint_dir / resume.PARTIAL_HISTORY, monitor, save_best)
    every = t["checkpoint_every_steps"]
    backup = resume.TrainingBackup(
        str(out.checkpoint_dir), save_freq=every or "epoch", on_save=out.state_saved
    )
    initial = resume.checkpoint_epoch(out.checkpoint_dir) or 0
    if initial >= t["epochs"]:
        logger.info(
            "%s: all %d epochs were trained before the interruption; writing the outputs",
            cfg.output["dir"],
            t["epochs"],
        )
    elif initial:
        logger.info("resuming %s at epoch %d of %d", cfg.output["dir"], initial + 1, t["epochs"])

    def shard(ds, training: bool):
        if plan.num_processes == 1 or data.process_sharded:
            return ds  # one process, or each process already reads its own share
        batch = t["batch_size"] if training else None
        return process_shard(ds, batch, plan.num_processes, plan.process_id)

    train_source, val_source = data.sources()
    # Arrays as (x, y): a recipe fits its data-dependent layers to the images.
    train_args = train_source if isinstance(train_source, tuple) else (train_source,)
    recipe.fit(
        *train_args,
        validation_data=val_source,
        epochs=t["epochs"],
        callbacks=[recorder, backup],
        verbose=verbose,
        shuffle=data.shuffle,
        num_examples=data.num_train,
        compile=False,  # compiled above, in the distribution's scope
        transform=shard,
    )
    out.commit_best()
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


def _weights_digest(model: keras.Model) -> str:
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    return digest.hexdigest()
