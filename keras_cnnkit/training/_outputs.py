"""The outputs of a training run: files, models and the gs:// training-state slots."""

from __future__ import annotations

import csv
import hashlib
import io as _stdio
import json
import logging
import os
import pathlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from keras_cnnkit.errors import ConfigError, MissingDependencyError
from keras_cnnkit.training import resume

logger = logging.getLogger("keras_cnnkit")

#: Files a run writes in its output location.
#: The best model of an epoch whose training state is not yet saved (in the state folder).
PENDING_BEST = "best.pending.keras"

OUTPUT_FILES = {
    "model": "model.keras",
    "best_model": "best.keras",
    "history_json": "history.json",
    "history_csv": "history.csv",
    "config": "config.toml",
    "curves": "curves.png",
    "summary": "summary.json",
}


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


class RunOutput:
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
        self._state_saved = False  # a training state was written in this session
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

    def stage_best(self, model: keras.Model, metadata: dict) -> None:
        """Save a new best model beside the training state, not yet as ``best.keras``.

        It becomes ``best.keras`` in :meth:`commit_best` once the training state of its
        epoch is saved; a kill before that discards it with its epoch, which is trained
        again.
        """
        from keras_cnnkit import io as ckio

        if not self.chief:  # saving runs collectives: every process saves
            with tempfile.TemporaryDirectory() as scratch:
                ckio.save(model, pathlib.Path(scratch) / "model.keras", metadata)
            return
        ckio.save(model, self.checkpoint_dir / PENDING_BEST, metadata, overwrite=True)

    def commit_best(self) -> None:
        """Make the staged best model ``best.keras`` if the saved training state covers it.

        A staged model of an epoch the training state does not cover (the run was
        killed before it was saved) is dropped: that epoch is trained again.
        """
        if not self.chief:
            return
        from keras_cnnkit.io import _files
        from keras_cnnkit.io.metadata import ModelMetadata, sidecar_path

        pending = self.checkpoint_dir / PENDING_BEST
        side = sidecar_path(pending)
        if not (pending.is_file() and side.is_file()):
            _files.remove(pending)
            _files.remove(side)
            return
        epoch = (ModelMetadata.read(side).training or {}).get("epoch") or 0
        if epoch > (resume.checkpoint_epoch(self.checkpoint_dir) or 0):
            if self._state_saved:
                return  # its state is not written yet: wait for it
            logger.info("dropping the best model of epoch %d: that epoch is trained again", epoch)
        else:
            target = self.uri(OUTPUT_FILES["best_model"])
            if self.remote:
                from keras_cnnkit.io import gcs

                gcs.upload(pending, target, overwrite=True, progress=False)
            else:
                with _files.atomic_pair(pathlib.Path(target), sidecar_path(target)) as unit:
                    shutil.copyfile(pending, unit.tmp)
                    unit.metadata = json.loads(side.read_text(encoding="utf-8"))
            self.written["best_model"] = target
        _files.remove(pending)
        _files.remove(side)

    def state_saved(self) -> None:
        """After each training state written: copy it to the bucket, then commit the best."""
        self._state_saved = True
        self.mirror_state()
        self.commit_best()

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
        from keras_cnnkit.io import _files

        name = name or OUTPUT_FILES[key]
        path = self.local / name
        _files.write_bytes(path, data)
        if self.remote:
            from keras_cnnkit.io import upload

            upload(path, self.uri(name), overwrite=True, progress=False)
        self.written[key] = self.uri(name)

    def finish(self) -> None:
        """Drop the training state and any temporary file once every output is written."""
        from keras_cnnkit.io import _files

        shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        self._delete_remote_state()
        if self.chief:
            _files.remove_stale_temps_in(self.local)
