"""Checkpoints that let a killed run resume where it stopped, and the run's history."""

from __future__ import annotations

import json
import math
import os
import pathlib
from collections.abc import Callable
from typing import Any

import keras

__all__ = [
    "CHECKPOINT_DIR",
    "PARTIAL_HISTORY",
    "RunRecorder",
    "TrainingBackup",
    "checkpoint_epoch",
    "checkpoint_progress",
    "read_history",
    "write_text_atomic",
]

#: Folder (inside the run's output folder) holding the training state.
CHECKPOINT_DIR = "checkpoints"
#: The epoch history, written each epoch beside the training state.
PARTIAL_HISTORY = "history.partial.json"


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`keras_cnnkit.io._files.write_text`).

    Args:
        path: Destination file (its folder is created).
        text: The content.
    """
    from keras_cnnkit.io import _files

    _files.write_text(path, text)


def checkpoint_epoch(checkpoint_dir: str | os.PathLike) -> int | None:
    """The number of finished epochs recorded by the training state, if any.

    Args:
        checkpoint_dir: The run's checkpoint folder.

    Returns:
        The epoch training resumes at, or ``None`` when there is no training state.
    """
    progress = checkpoint_progress(checkpoint_dir)
    return None if progress is None else progress[0]


def read_history(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read the per-epoch history written by :class:`RunRecorder` (empty if absent)."""
    try:
        data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def checkpoint_progress(checkpoint_dir: str | os.PathLike) -> tuple[int, int] | None:
    """How far a training state got: ``(finished epochs, batches into the next)``.

    Args:
        checkpoint_dir: A checkpoint folder written by :class:`TrainingBackup`.

    Returns:
        ``(epoch, batch)``, or ``None`` when the folder holds no training state.
    """
    meta = pathlib.Path(checkpoint_dir) / "training_metadata.json"
    for path in (meta, meta.with_name(meta.name + ".bkp")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return int(data["epoch"]), int(data.get("batch") or 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


class TrainingBackup(keras.callbacks.BackupAndRestore):
    """Keras' ``BackupAndRestore``, saving at every epoch end and every N steps.

    With ``save_freq`` an integer, Keras' callback saves only every N steps and
    records the epoch count of the current session; this one also saves at the end
    of each epoch and records the true epoch, so a run resumed twice still resumes at
    the right epoch. It keeps two states (``double_checkpoint``), so a kill while
    writing one falls back to the other. A run resumed from a mid-epoch state starts
    that epoch again from its first batch, with the weights of the last saved step
    (Keras restores the epoch, not the position in the data).

    Args:
        backup_dir: Folder of the training state.
        save_freq: ``"epoch"`` or a number of steps.
        on_save: Called with no arguments after each state is written (for example
            to copy it to remote storage).
    """

    def __init__(
        self,
        backup_dir: str,
        save_freq: int | str = "epoch",
        on_save: Callable[[], None] | None = None,
    ):
        super().__init__(
            backup_dir, save_freq=save_freq, double_checkpoint=True, delete_checkpoint=False
        )
        self.on_save = on_save
        self._stamp = self._state_stamp()

    def _state_stamp(self):
        try:
            stat = (pathlib.Path(self.backup_dir) / "training_metadata.json").stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def _notify(self) -> None:
        stamp = self._state_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            if self.on_save is not None:
                self.on_save()

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if self.on_save is not None and self.save_freq != "epoch":
            self._notify()

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.save_freq != "epoch":
            self._save_model()
        self._notify()


class RunRecorder(keras.callbacks.Callback):
    """Record every epoch's logs across resumed sessions, and save the best model.

    The history is kept in ``history_path`` (rewritten atomically each epoch). When a
    session starts at epoch ``e`` (restored by :class:`TrainingBackup`), entries from
    epoch ``e`` on are dropped, so every epoch appears exactly once.

    Args:
        history_path: The JSON file of the history, or ``None`` not to write it.
        monitor: The logged value that picks the best model (e.g. ``"val_accuracy"``).
        save_best: ``f(model, entry)`` called when the monitored value improves, or
            ``None``.
    """

    def __init__(
        self,
        history_path: str | os.PathLike | None,
        monitor: str,
        save_best: Callable[[keras.Model, dict], None] | None = None,
    ):
        super().__init__()
        self.history_path = history_path
        self.monitor = monitor
        self.mode = "min" if "loss" in monitor else "max"
        self.save_best = save_best
        self.entries = read_history(history_path) if history_path else []
        self.first_epoch: int | None = None

    def truncate(self, epoch: int) -> None:
        """Keep only the entries of epochs before ``epoch`` (0-based)."""
        self.entries = [e for e in self.entries if e["epoch"] <= epoch]

    def best(self) -> dict | None:
        """The entry with the best monitored value so far (``None`` if none)."""
        scored = [e for e in self.entries if _finite(e.get(self.monitor))]
        if not scored:
            return None
        key = (lambda e: e[self.monitor]) if self.mode == "min" else (lambda e: -e[self.monitor])
        return min(scored, key=key)

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
            self.truncate(epoch)

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1}
        for key, value in (logs or {}).items():
            entry[key] = float(value)
        lr = _learning_rate(self.model)
        if lr is not None:
            entry["learning_rate"] = lr
        previous = self.best()
        value = entry.get(self.monitor)
        improved = _finite(value) and (
            previous is None
            or (
                value < previous[self.monitor]
                if self.mode == "min"
                else value > previous[self.monitor]
            )
        )
        self.entries = [e for e in self.entries if e["epoch"] <= epoch] + [entry]
        if improved and self.save_best is not None:
            self.save_best(self.model, entry)
        if self.history_path:
            write_text_atomic(self.history_path, json.dumps(self.entries, indent=1))


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _learning_rate(model) -> float | None:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        return float(keras.ops.convert_to_numpy(inner.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return None
