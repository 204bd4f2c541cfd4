"""A run killed with SIGKILL mid-epoch resumes from its checkpoint when started again."""

import json
import os
import signal
import subprocess

from _training_helpers import cnnkit_command, make_arrays, sigkill_once, write_config, write_npz

from keras_cnnkit import io as ckio
from keras_cnnkit.training.resume import checkpoint_epoch

EPOCHS = 3


def test_sigkill_mid_epoch_then_resume(tmp_path):
    data = write_npz(tmp_path / "d.npz", n=200)
    out = tmp_path / "out"
    config = write_config(tmp_path / "run.toml", str(data), str(out))
    argv = cnnkit_command(
        "train",
        str(config),
        "--set",
        f"training.epochs={EPOCHS}",
        "--set",
        "training.batch_size=2",
        "--set",
        "training.checkpoint_every_steps=20",
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def killable_epoch():
        epoch = checkpoint_epoch(out / "checkpoints")
        return epoch if epoch is not None and 1 <= epoch < EPOCHS else None

    killed_at, returncode, log = sigkill_once(argv, env, killable_epoch, timeout_s=60)
    assert killed_at is not None, f"no checkpoint appeared before the run ended:\n{log}"
    assert returncode == -signal.SIGKILL
    assert not (out / "model.keras").exists()
    partial = json.loads((out / "checkpoints" / "history.partial.json").read_text())
    assert len(partial) >= killed_at

    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"(resumed at epoch {killed_at + 1})" in rerun.stdout
    # The second session ran only the remaining epochs.
    assert "Epoch 1/" not in rerun.stdout and f"Epoch {EPOCHS}/{EPOCHS}" in rerun.stdout
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history] == list(range(1, EPOCHS + 1))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["initial_epoch"] == killed_at and summary["epochs"] == EPOCHS
    model, meta = ckio.load(out / "model.keras")
    assert meta.training["epoch"] == EPOCHS
    assert model.predict(make_arrays(4)[0], verbose=0).shape == (4, 3)
    assert not (out / "checkpoints").exists()
