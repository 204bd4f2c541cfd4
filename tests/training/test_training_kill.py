"""Runs killed with SIGKILL at the moments that matter keep their outputs consistent.

Each test starts ``cnnkit train`` in a fresh process that kills itself with SIGKILL at a
named moment (found by watching the renames the run makes), starts the same command
again, and checks that ``best.keras``, its metadata, ``history.json`` and
``summary.json`` agree, and that no temporary file is left behind.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_cnnkit import io as ckio

pytestmark = pytest.mark.tensorflow("kills a TensorFlow training process")

#: Runs ``cnnkit ARGS``, killing itself right after the N-th rename onto a file named
#: NAME (environment: CNNKIT_TEST_KILL_NAME, CNNKIT_TEST_KILL_AFTER).
KILLING_CNNKIT = textwrap.dedent(
    """
    import os, signal, sys
    name = os.environ["CNNKIT_TEST_KILL_NAME"]
    after, seen, real_replace = int(os.environ["CNNKIT_TEST_KILL_AFTER"]), [0], os.replace

    def replace(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if os.path.basename(os.fspath(dst)) == name:
            seen[0] += 1
            if seen[0] == after:
                os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    from keras_cnnkit.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _data(path: pathlib.Path, n: int, seed: int, shift_labels: int = 0) -> pathlib.Path:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.integers(0, 60, (n, 8, 8, 3)) + (y * 90)[:, None, None, None]
    labels = ((y + shift_labels) % 3).astype("int32")
    np.savez(path, x=np.clip(x, 0, 255).astype("uint8"), y=labels)
    return path


def _config(tmp_path: pathlib.Path, epochs: int) -> pathlib.Path:
    train = _data(tmp_path / "train.npz", 96, 0)
    validation = _data(tmp_path / "val.npz", 30, 1)
    _data(tmp_path / "val_wrong.npz", 30, 1, shift_labels=1)
    path = tmp_path / "run.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [data]
            train = "{train}"
            validation = "{validation}"
            [model]
            spec = {{ stages = [4], head = {{ pooling = "avg" }} }}
            [training]
            epochs = {epochs}
            batch_size = 8
            learning_rate = 0.01
            precision = "float32"
            monitor = "val_loss"
            [output]
            dir = "{tmp_path / "out"}"
            """
        )
    )
    return path


def _run(config: pathlib.Path, kill_name: str | None = None, after: int = 1, sets=()):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    args = ["train", str(config), "-q", *(a for s in sets for a in ("--set", s))]
    if kill_name is None:
        argv = [sys.executable, "-m", "keras_cnnkit", *args]
    else:
        env.update(CNNKIT_TEST_KILL_NAME=kill_name, CNNKIT_TEST_KILL_AFTER=str(after))
        argv = [sys.executable, "-c", KILLING_CNNKIT, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


def _check_consistent(out: pathlib.Path, epochs: int) -> None:
    history = json.loads((out / "history.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert [e["epoch"] for e in history] == list(range(1, epochs + 1))
    monitor = summary["monitor"]
    values = [e[monitor] for e in history]
    best_epoch = int(np.nanargmin(values)) + 1
    assert summary["best_epoch"] == best_epoch
    _, meta = ckio.load(out / "best.keras")
    assert meta.training["epoch"] == best_epoch
    assert meta.training["scores"][monitor] == pytest.approx(values[best_epoch - 1], abs=0)
    assert meta.training["scores"] == history[best_epoch - 1]
    _, final = ckio.load(out / "model.keras")
    assert final.training["epoch"] == epochs
    leftovers = [p.name for p in out.rglob("*") if ".tmp" in p.name or "pending" in p.name]
    assert leftovers == []
    assert not (out / "checkpoints").exists()


@pytest.mark.parametrize("after", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_kill_right_after_best_model_replacement(tmp_path, after):
    """The epoch of the killed replacement is trained again, and does not improve.

    The resumed session validates on the same images with every label moved to the next
    class: the epoch trained again and every later one score worse than the epochs kept,
    so the best model must be one of the epochs finished before the kill, never the
    discarded one.
    """
    epochs = 5
    config = _config(tmp_path, epochs)
    killed = _run(config, "best.keras", after)
    if killed.returncode == 0:
        pytest.fail(f"best.keras was replaced fewer than {after} times:\n{killed.stderr[-3000:]}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    rerun = _run(config, sets=[f'data.validation="{tmp_path / "val_wrong.npz"}"'])
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-3000:]
    _check_consistent(tmp_path / "out", epochs)


def test_kill_during_the_final_save(tmp_path):
    epochs = 3
    config = _config(tmp_path, epochs)
    killed = _run(config, "model.keras", 1)  # the final model renamed into place
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    rerun = _run(config)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-3000:]
    assert "of 3" not in rerun.stderr.replace("epoch 3 of 3", "")  # never "epoch 4 of 3"
    assert "epoch 4" not in rerun.stderr
    _check_consistent(tmp_path / "out", epochs)
