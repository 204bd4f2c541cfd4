"""keras.distribution.DataParallel on the JAX backend: 2 devices, and a 2-process job."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from _training_helpers import (
    child_pids,
    cnnkit_command,
    make_arrays,
    start_jax_job,
    stop,
    write_config,
    write_npz,
)

from keras_cnnkit import io as ckio
from keras_cnnkit.training.resume import checkpoint_epoch

pytest.importorskip("jax")

#: Same data, same initial weights, SGD without shuffling: distributed == plain.
EXACT = [
    "training.augment=false",
    "training.top_k=2",
    "training.optimizer=sgd",
    "training.momentum=0.0",
    "training.learning_rate=0.05",
    "training.shuffle=false",
    "training.precision=float32",
]

TWO_DEVICES = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from keras_cnnkit.training import train

    config, out, exact = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    common = exact + ["training.epochs=2", "distribution.cpu_devices=2"]
    dp = train(config, common + [f'output.dir="{out}/dp"', "distribution.strategy=data_parallel"],
               verbose=0)
    single = train(config, common + [f'output.dir="{out}/single"', "distribution.strategy=none"],
                   verbose=0)
    x = np.load(sys.argv[4])
    np.save(f"{out}/dp_predictions.npy", np.asarray(dp.model.predict(x, verbose=0)))
    print(json.dumps({"dp": [e["loss"] for e in dp.history],
                      "single": [e["loss"] for e in single.history],
                      "distribution": dp.distribution}))
    """
)


def test_data_parallel_two_devices_and_tensorflow_reload(tmp_path):
    config = write_config(tmp_path / "run.toml", str(write_npz(tmp_path / "d.npz", n=64)), "x")
    x = make_arrays(8, seed=3)[0]
    np.save(tmp_path / "x.npy", x)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            TWO_DEVICES,
            str(config),
            str(tmp_path),
            json.dumps(EXACT),
            str(tmp_path / "x.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["distribution"]["strategy"] == "data_parallel"
    assert result["distribution"]["num_replicas"] == 2
    np.testing.assert_allclose(result["dp"], result["single"], rtol=1e-4)
    # The model saved on JAX loads here, on TensorFlow, and predicts the same.
    model, meta = ckio.load(tmp_path / "dp" / "model.keras")
    assert meta.class_names == ["class_0", "class_1", "class_2"]
    expected = np.load(tmp_path / "dp_predictions.npy")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def _job_argv(config, *sets):
    argv = ["train", str(config), "--set", "distribution.strategy=data_parallel"]
    for item in sets:
        argv += ["--set", item]
    return cnnkit_command(*argv)


@pytest.mark.slow  # about 50 s: three JAX processes
def test_two_process_job_through_cnnkit_train(tmp_path):
    # 66 images split into 48 training images (3 global batches of 16, each split evenly
    # between the two processes) and 18 validation images: no batch is dropped.
    data = write_npz(tmp_path / "d.npz", n=66)
    out = tmp_path / "out"
    config = write_config(tmp_path / "run.toml", str(data), str(out))
    sets = [*EXACT, "training.epochs=2"]
    procs = start_jax_job(_job_argv(config, *sets), 2, tmp_path / "cache")
    try:
        outputs = [p.communicate(timeout=150) for p in procs]
    finally:
        stop(procs)
    for p, (_, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    digests = [line for stdout, _ in outputs for line in stdout.splitlines() if "sha256" in line]
    assert len(digests) == 2
    assert digests[0].split()[-1] == digests[1].split()[-1]  # identical weights
    # Only process 0 wrote the outputs, and the job's losses are those of one process.
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2]
    # One JAX process on one device, same global batches (initial weights depend on the backend).
    plain_dir = tmp_path / "plain"
    argv = _job_argv(config, *sets, f'output.dir="{plain_dir}"', "distribution.strategy=none")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    plain = subprocess.run(argv, capture_output=True, text=True, timeout=150, env=env)
    assert plain.returncode == 0, plain.stderr[-3000:]
    plain_history = json.loads((plain_dir / "history.json").read_text())
    np.testing.assert_allclose(
        [e["loss"] for e in history], [e["loss"] for e in plain_history], rtol=1e-4
    )
    model, meta = ckio.load(out / "model.keras")
    x = make_arrays(8, seed=3)[0]
    probs = model.predict(x, verbose=0)
    assert probs.shape == (8, 3) and np.allclose(probs.sum(-1), 1, atol=1e-5)
    assert meta.training["distribution"]["num_processes"] == 2


@pytest.mark.slow  # about 100 s: JAX notices a dead peer by its missed heartbeats
def test_a_dead_process_ends_the_job_with_an_error(tmp_path):
    data = write_npz(tmp_path / "d.npz", n=200)
    out = tmp_path / "out"
    config = write_config(tmp_path / "run.toml", str(data), str(out))
    procs = start_jax_job(
        _job_argv(config, "training.epochs=50", "training.batch_size=4"), 2, tmp_path / "cache"
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and checkpoint_epoch(out / "checkpoints") is None:
            assert procs[0].poll() is None, procs[0].communicate()[1][-3000:]
            time.sleep(0.1)
        assert checkpoint_epoch(out / "checkpoints") is not None, "the job never trained"
        for pid in child_pids(procs[1].pid):  # the training process under `timeout`
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        procs[0].wait(timeout=120)
        elapsed = time.monotonic() - killed
    finally:
        stop(procs)
    assert procs[0].returncode != 0
    assert elapsed < 120
    print(f"process 0 ended {elapsed:.1f} s after process 1 was killed")
