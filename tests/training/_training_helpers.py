"""Tiny data sets and a command runner for the training tests."""

from __future__ import annotations

import pathlib
import sys

import numpy as np
from PIL import Image

#: Runs ``cnnkit`` in a fresh interpreter.
CNNKIT = "import sys, keras_cnnkit.cli.main as m; sys.exit(m.main(sys.argv[1:]))"


def cnnkit_command(*args: str) -> list[str]:
    """The argv of a ``cnnkit`` process running ``args``."""
    return [sys.executable, "-c", CNNKIT, *args]


def run_cli(argv: list[str]) -> int:
    """Run ``cnnkit`` with ``argv`` in this process; returns the exit code."""
    from keras_cnnkit.cli.main import main

    return main(argv)


def make_arrays(n: int = 96, size: int = 8, classes: int = 3, seed: int = 0):
    """Separable images: each class has its own brightness."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = (
        rng.integers(0, 50, (n, size, size, 3))
        + (y * 200 // max(1, classes - 1))[:, None, None, None]
    )
    return np.clip(x, 0, 255).astype("uint8"), y.astype("int32")


def write_npz(path: pathlib.Path, n: int = 96, classes: int = 3, seed: int = 0) -> pathlib.Path:
    x, y = make_arrays(n, classes=classes, seed=seed)
    names = np.array([f"class_{i}" for i in range(classes)])
    np.savez(path, x=x, y=y, class_names=names)
    return path


def write_folder(root: pathlib.Path, per_class: int = 12, names=("cat", "dog", "eel")):
    """Real PNG files under ``root/<class>/``."""
    x, y = make_arrays(per_class * len(names), classes=len(names), seed=1)
    for i, (img, label) in enumerate(zip(x, y)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return root


def write_config(path: pathlib.Path, train: str, out: str, extra: str = "") -> pathlib.Path:
    path.write_text(
        f"""
[data]
train = "{train}"
validation_split = 0.25

[model]
spec = {{ stages = [4], head = {{ pooling = "avg" }} }}

[training]
epochs = 2
batch_size = 16
learning_rate = 0.02
precision = "float32"

[output]
dir = "{out}"
{extra}
"""
    )
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_jax_job(argv: list[str], num: int, cache: pathlib.Path, limit_s: int = 120) -> list:
    """Start ``num`` processes of a JAX job on 127.0.0.1, each killed after ``limit_s``."""
    import os
    import subprocess

    port = free_port()
    procs = []
    for i in range(num):
        env = dict(
            os.environ,
            KERAS_BACKEND="jax",
            TF_CPP_MIN_LOG_LEVEL="2",
            CNNKIT_NUM_PROCESSES=str(num),
            CNNKIT_PROCESS_ID=str(i),
            CNNKIT_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
            JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}",
            CNNKIT_RUN_CACHE=str(cache),
        )
        env.pop("XLA_FLAGS", None)
        # SIGKILL: a process that joined the job does not stop on SIGTERM.
        procs.append(
            subprocess.Popen(
                ["timeout", "-s", "KILL", str(limit_s), *argv],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def child_pids(pid: int) -> list[int]:
    """The PIDs of the direct children of ``pid`` (Linux)."""
    path = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def stop(procs) -> None:
    """Kill (by PID) every process still running, and reap them."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def sigkill_once(argv: list[str], env: dict, ready, timeout_s: float, poll_s: float = 0.02):
    """Run ``argv``; SIGKILL it as soon as ``ready()`` returns a value (not ``None``).

    Returns:
        ``(value, returncode, output)``: the value ``ready`` returned (``None`` if the
        process ended or ``timeout_s`` passed first), the exit code and the output.
    """
    import os
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    value = None
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            value = ready()
            if value is not None:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(poll_s)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    output = proc.stdout.read().decode()
    proc.stdout.close()
    return value, proc.returncode, output
