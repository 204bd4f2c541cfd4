"""Distribution: MirroredStrategy over 2 logical CPUs (in a fresh process) and refusals."""

import json
import subprocess
import sys
import textwrap

import pytest
from _training_helpers import write_config, write_npz

from keras_cnnkit.errors import DistributionError
from keras_cnnkit.training.distribute import plan_distribution, process_layout

MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from keras_cnnkit.training.distribute import configure_cpu_devices
    from keras_cnnkit.training import train

    configure_cpu_devices(2)  # before TensorFlow starts
    config, out = sys.argv[1], sys.argv[2]
    common = ["training.augment=false", "training.epochs=2", "training.top_k=2",
              "training.optimizer=sgd", "training.momentum=0.0", "training.learning_rate=0.05",
              "training.shuffle=false"]
    single = train(config, common + [f'output.dir="{out}/single"', "distribution.strategy=none"],
                   verbose=0)
    mirrored = train(config, common + [f'output.dir="{out}/mirrored"',
                                       "distribution.strategy=mirrored",
                                       "distribution.cpu_devices=2"], verbose=0)
    spread = 0.0
    for v in mirrored.model.non_trainable_variables:
        replicas = [np.asarray(r) for r in v.value.values]
        assert len(replicas) == 2, v.path
        spread = max(spread, float(np.max(np.abs(replicas[0] - replicas[1]))))
    print(json.dumps({
        "single": [e["loss"] for e in single.history],
        "mirrored": [e["loss"] for e in mirrored.history],
        "distribution": mirrored.distribution,
        "bn_spread": spread,
        "files": sorted(mirrored.files),
    }))
    """
)

pytestmark = pytest.mark.tensorflow("tf.distribute.MirroredStrategy")


def test_mirrored_two_cpus_matches_one_device(tmp_path):
    data = write_npz(tmp_path / "d.npz", n=64)
    config = write_config(tmp_path / "run.toml", str(data), str(tmp_path / "unused"))
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(config), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["distribution"]["strategy"] == "mirrored"
    assert result["distribution"]["num_replicas"] == 2
    # The batch size is global: 2 replicas of 8 train like 1 device of 16.
    assert len(result["mirrored"]) == 2
    for a, b in zip(result["single"], result["mirrored"]):
        assert a == pytest.approx(b, rel=1e-4)
    # BatchNorm moving statistics are synchronized: both replicas hold the same values.
    assert result["bn_spread"] < 1e-6
    assert "model" in result["files"] and "best_model" in result["files"]


def test_tensorflow_multi_worker_is_refused_with_the_reason():
    with pytest.raises(DistributionError, match=r"keras-team/keras#20585.*JAX"):
        plan_distribution({"strategy": "mirrored", "num_processes": 2, "process_id": 0})
    with pytest.raises(DistributionError, match="needs the JAX backend"):
        plan_distribution({"strategy": "data_parallel"})


def test_process_layout_from_the_environment():
    env = {"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"index": 1}})}
    assert process_layout({}, env) == (2, 1, "a:1")
    assert process_layout({}, {"CNNKIT_NUM_PROCESSES": "3", "CNNKIT_PROCESS_ID": "2"})[:2] == (3, 2)
    assert process_layout({"num_processes": 1, "process_id": 0}, env)[:2] == (1, 0)
    with pytest.raises(DistributionError, match="process_id 4 is not valid"):
        process_layout({"num_processes": 2, "process_id": 4}, {})


def test_one_device_trains_without_a_strategy():
    # A one-replica MirroredStrategy only adds tf.distribute's cost to every step.
    import tensorflow as tf

    if len(tf.config.list_logical_devices("CPU")) + len(tf.config.list_logical_devices("GPU")) > 1:
        pytest.skip("this process already has several devices")
    plan = plan_distribution({"strategy": "mirrored"})
    assert plan.strategy == "none" and plan.num_replicas == 1 and plan.tf_strategy is None
    assert len(plan.devices) == 1
