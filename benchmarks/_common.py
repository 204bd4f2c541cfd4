"""Shared pieces of the benchmarks: machine peaks, FLOP counting, timing, result files."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import statistics
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
SHARED_CIFAR = (
    pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-train-jpeg.tar.gz"
)
CACHE = pathlib.Path(os.environ.get("CNNKIT_BENCH_CACHE", "/tmp/cnnkit-bench-cache"))


def machine() -> dict:
    """CPU model, core count, memory and the library's hardware report."""
    import keras
    import tensorflow as tf

    from keras_cnnkit import __version__, detect_hardware

    info = detect_hardware()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return {
        "cpu": info.device_name,
        "cores": os.cpu_count(),
        "memory": mem,
        "isa": list(info.isa),
        "device": info.device,
        "chosen_precision": info.precision,
        "reason": info.reason,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_cnnkit": __version__,
    }


def matmul_peak(dtype: str = "float32", n: int = 2048, repeats: int = 5) -> float:
    """Dense matmul GFLOP/s (best of ``repeats``), timing a graph that returns a 2x2 corner."""
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    b = tf.random.normal((n, n), dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)

    @tf.function
    def step():
        return tf.matmul(a, b)[:2, :2]

    step().numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step().numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def forward_flops(model, input_shape=None) -> int:
    """FLOPs of one forward pass of one image: :func:`keras_cnnkit.models.forward_flops`.

    A multiply-add counts as 2 FLOPs; training is taken as 3x the forward pass. The model
    is built for its input shape already (``input_shape`` is kept for old callers).
    """
    from keras_cnnkit.models import forward_flops as count

    return count(model)


class StepTimer:
    """A Keras callback recording the wall time of every training batch."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times: list[float] = []
                self._start = 0.0

            def on_train_batch_begin(self, batch, logs=None):
                self._start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.times.append(time.perf_counter() - self._start)

            def median(self, skip: int = 2) -> float:
                return statistics.median(self.times[skip:] or self.times)

        return _Timer()


class EpochTimer:
    """A Keras callback recording the wall time of every epoch, start to end (its
    validation and the epoch boundary included), in ``seconds``."""

    def __new__(cls):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []
                self._start = 0.0

            def on_epoch_begin(self, epoch, logs=None):
                self._start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self._start)

        return _Timer()


def write_results(name: str, data: dict, markdown: str) -> None:
    """Write ``results/NAME.json`` and ``results/NAME.md``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(markdown)
    print(f"\nwrote {RESULTS / name}.json and .md")


def machine_markdown(m: dict) -> str:
    return (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; ISA {' '.join(m['isa']) or '-'}; "
        f"TensorFlow {m['tensorflow']}, Keras {m['keras']}, keras-cnnkit {m['keras_cnnkit']}. "
        f"precision='auto' chose **{m['chosen_precision']}** ({m['reason']})."
    )
