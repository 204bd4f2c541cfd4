"""Shards read by a job of several processes: JAX pixels, equal shares, `cnnkit train` x 2."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from _shard_helpers import CLASSES, cnnkit_command, gcs_bucket, write_tree
from PIL import Image

from keras_cnnkit.data import from_shards, pack
from keras_cnnkit.errors import DataError

pytestmark = pytest.mark.tensorflow(reason="the reference pixels come from the TensorFlow backend")


def write_jpegs(root, per_class: int, seed: int = 0, size=(20, 16)) -> list[str]:
    """Class folders of random JPEG files with a learnable class signal; relative paths."""
    rng = np.random.default_rng(seed)
    keys = []
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (size[1], size[0], 3), dtype=np.uint8)
            pixels[..., c] += 120
            Image.fromarray(pixels).save(root / name / f"{i:03d}.jpg", quality=90)
            keys.append(f"{name}/{i:03d}.jpg")
    return keys


# ------------------------------------------------------------------ pixels under JAX

PIXELS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras
    from keras_cnnkit.data import from_shards

    manifest, out = sys.argv[1], sys.argv[2]
    assert keras.backend.backend() == "{backend}", keras.backend.backend()
    plain = from_shards(manifest, image_size=(16, 12), batch_size=None, shuffle=False,
                        include_filenames=True)
    rows = sorted((f.decode(), x, y) for x, y, f in plain.as_numpy_iterator())
    # Images smaller than the output: augmented at their size, then resized (late resize).
    late = from_shards(manifest, image_size=(64, 64), batch_size=8, shuffle=False, seed=3,
                       augment={{"flip": True, "translate": 0.1}})
    x, y = next(iter(late))
    np.savez(out, names=np.array([r[0] for r in rows]), plain=np.stack([r[1] for r in rows]),
             labels=np.array([r[2] for r in rows]), late=np.asarray(x), late_y=np.asarray(y))
    """
)


def _pixels(backend: str, manifest: str, out):
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", PIXELS.format(backend=backend), manifest, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


def test_from_shards_under_jax_gives_the_tensorflow_pixels(tmp_path):
    write_tree(tmp_path / "src", per_class=5)
    result = pack(tmp_path / "src", tmp_path / "shards", shard_size="4KB", progress=False)
    assert result.manifest["splits"]["train"]["max_height"] <= 64  # the late-resize route
    # Both in fresh processes: the same conditions (no global seed set by a test).
    on_jax = _pixels("jax", result.manifest_uri, tmp_path / "jax.npz")
    on_tf = _pixels("tensorflow", result.manifest_uri, tmp_path / "tf.npz")
    assert len(on_tf["names"]) == 15
    assert on_tf["late"].dtype == np.float32 and on_tf["late"].shape == (8, 64, 64, 3)
    for key in ("names", "plain", "labels", "late", "late_y"):
        assert on_jax[key].shape == on_tf[key].shape, key
        np.testing.assert_array_equal(on_jax[key], on_tf[key], err_msg=key)


# ------------------------------------------------------------------ equal shares


def _names(ds) -> list[str]:
    return [f.decode() for _, _, f in ds.as_numpy_iterator()]


def test_equal_shares_when_the_shards_split_unevenly(tmp_path):
    keys = write_tree(tmp_path / "src", per_class=10)
    result = pack(tmp_path / "src", tmp_path / "shards", shard_size="5KB", progress=False)
    counts = [s["count"] for s in result.manifest["splits"]["train"]["shards"]]
    shares = [sum(counts[0::2]), sum(counts[1::2])]
    assert shares[0] != shares[1], counts  # the case that would hang a training job
    largest = max(shares)
    common = {"image_size": 8, "seed": 0, "include_filenames": True, "batch_size": None}
    read = []
    for pid in (0, 1):
        own = set(
            _names(from_shards(result.manifest_uri, num_processes=2, process_id=pid, **common))
        )
        assert len(own) == shares[pid]
        ds = from_shards(
            result.manifest_uri, num_processes=2, process_id=pid, equal_shares=True, **common
        )
        assert ds.num_examples == largest
        assert int(ds.cardinality()) == largest  # declared: Keras knows the steps
        for _ in range(2):  # every epoch: the largest share, each own image at least once
            names = _names(ds)
            assert len(names) == largest
            assert set(names) == own
        read += names
        batched = from_shards(
            result.manifest_uri,
            num_processes=2,
            process_id=pid,
            equal_shares=True,
            image_size=8,
            batch_size=4,
            seed=0,
        )
        assert int(batched.cardinality()) == math.ceil(largest / 4)
        assert sum(1 for _ in batched) == math.ceil(largest / 4)
    assert sorted(set(read)) == sorted(keys)
    assert len(read) - len(keys) == abs(shares[0] - shares[1])  # the only repeats
    # Without a manifest there are no counts to make the shares equal by.
    bare = tmp_path / "bare"
    bare.mkdir()
    for s in result.manifest["splits"]["train"]["shards"]:
        (bare / s["name"]).write_bytes((tmp_path / "shards" / s["name"]).read_bytes())
    with pytest.raises(DataError, match="equal_shares needs the record count"):
        from_shards(str(bare / "train-*.tfrecord"), num_processes=2, equal_shares=True)


# ------------------------------------------------------------------ cnnkit train x 2

#: One global batch per epoch holding every training image once, no shuffling or
#: augmentation, SGD: the order of the images cannot matter, so two processes that each
#: read their own shards compute the single-process folder run's steps (up to the order
#: of float sums in the cross-process all-reduce).
EXACT = [
    "training.epochs=3",
    "training.shuffle=false",
    "training.augment=false",
    "training.optimizer=sgd",
    "training.momentum=0.0",
    "training.learning_rate=0.05",
    "training.precision=float32",
    "training.top_k=2",
    "data.image_size=[16, 16]",
]

READS = textwrap.dedent(
    """
    import hashlib, json, sys
    from keras_cnnkit.training._data import load_data
    from keras_cnnkit.training.distribute import plan_distribution

    plan = plan_distribution({"strategy": "data_parallel"})  # joins the job
    data = load_data({"train": sys.argv[1], "shard_cache": sys.argv[2], "image_size": [16, 16]},
                     batch_size=int(sys.argv[3]), seed=0, shuffle=True)
    train, val = data.sources()
    epochs = []
    for _ in range(2):
        seen, sizes = [], []
        for x, _ in train.as_numpy_iterator():
            sizes.append(len(x))
            seen += [hashlib.sha256(img.tobytes()).hexdigest() for img in x]
        epochs.append({"seen": seen, "sizes": sizes})
    print(json.dumps({"epochs": epochs, "num_train": data.num_train,
                      "sharded": data.process_sharded, "val": sum(len(x) for x, _ in val)}))
    """
)


def _write_config(path, train, out) -> str:
    from _training_helpers import write_config

    return str(write_config(path, str(train), str(out)))


def _job(tmp_path, argv, limit_s=150):
    from _training_helpers import start_jax_job, stop

    procs = start_jax_job(argv, 2, tmp_path / "run-cache", limit_s=limit_s)
    try:
        outputs = [p.communicate(timeout=limit_s + 30) for p in procs]
    finally:
        stop(procs)
    for p, (_, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    return [stdout for stdout, _ in outputs]


@pytest.mark.slow  # about 45 s: two JAX jobs of two processes and one plain run
def test_two_processes_train_from_a_bucket_as_one_from_the_folder(tmp_path, monkeypatch):
    pytest.importorskip("jax")
    write_jpegs(tmp_path / "src", per_class=16)
    with gcs_bucket() as (client, bucket, env, gcs):
        uri = f"gs://{bucket.name}/cifar-like"
        # One image a shard: the training shards split evenly between two processes.
        result = pack(
            tmp_path / "src", uri, shard_size=1, validation_split=0.25, progress=False, gcs=gcs
        )
        n_train = result.manifest["splits"]["train"]["count"]
        n_val = result.manifest["splits"]["validation"]["count"]
        assert (n_train, n_val) == (38, 10)  # the data layer's seeded split of 48 files
        half = n_train // 2
        manifest = f"{uri}/manifest.json"
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", env["STORAGE_EMULATOR_HOST"])
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")

        # Each image read once per epoch over both processes (training stream of a job).
        ref = from_shards(
            manifest,
            image_size=(16, 16),
            batch_size=None,
            shuffle=False,
            include_filenames=True,
            cache_dir=tmp_path / "ref-cache",
            gcs=gcs,
        )
        by_hash = {
            hashlib.sha256(x.tobytes()).hexdigest(): f.decode()
            for x, _, f in ref.as_numpy_iterator()
        }
        assert len(by_hash) == n_train  # every image tells itself apart
        argv = [sys.executable, "-c", READS, manifest, str(tmp_path / "shards"), "8"]
        reads = [json.loads(out.strip().splitlines()[-1]) for out in _job(tmp_path, argv)]
        for r in reads:
            assert r["sharded"] and r["num_train"] == n_train and r["val"] == n_val // 2
        for epoch in (0, 1):
            a, b = (r["epochs"][epoch] for r in reads)
            assert a["sizes"] == b["sizes"] == [4] * (half // 4) + [half % 4]  # same steps
            assert not set(a["seen"]) & set(b["seen"])
            names = sorted(by_hash[h] for h in a["seen"] + b["seen"])
            assert names == sorted(by_hash.values())  # each image exactly once

        # `cnnkit train` with two processes from the bucket...
        out = tmp_path / "job"
        config = _write_config(tmp_path / "job.toml", manifest, out)
        sets = [*EXACT, f"training.batch_size={n_train}", f'data.shard_cache="{tmp_path / "c"}"']
        argv = ["train", config, "--set", "distribution.strategy=data_parallel"]
        stdouts = _job(tmp_path, cnnkit_command(*argv, *sum((["--set", s] for s in sets), [])))
    digests = [line.split()[-1] for s in stdouts for line in s.splitlines() if "sha256" in line]
    assert len(digests) == 2 and digests[0] == digests[1]  # one model
    job = json.loads((out / "history.json").read_text())
    meta = json.loads((out / "model.keras.json").read_text())
    assert meta["training"]["distribution"]["num_processes"] == 2
    # ...and one JAX process from the folder of the same images.
    plain_out = tmp_path / "plain"
    config = _write_config(tmp_path / "plain.toml", tmp_path / "src", plain_out)
    sets = [*EXACT, f"training.batch_size={n_train}", "distribution.strategy=none"]
    proc = subprocess.run(
        cnnkit_command("train", config, *sum((["--set", s] for s in sets), [])),
        capture_output=True,
        text=True,
        timeout=200,
        env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain = json.loads((plain_out / "history.json").read_text())
    assert [e["epoch"] for e in job] == [e["epoch"] for e in plain] == [1, 2, 3]
    np.testing.assert_allclose([e["loss"] for e in job], [e["loss"] for e in plain], rtol=1e-4)
    np.testing.assert_allclose(
        [e["val_loss"] for e in job], [e["val_loss"] for e in plain], rtol=1e-4
    )
    # 10 validation images: one prediction that changed would move accuracy by 1/10.
    assert [e["val_accuracy"] for e in job] == [e["val_accuracy"] for e in plain]


@pytest.mark.slow  # about 30 s: a JAX job of two processes
def test_two_processes_train_from_shards_that_split_unevenly(tmp_path):
    pytest.importorskip("jax")
    write_jpegs(tmp_path / "src", per_class=11)
    result = pack(
        tmp_path / "src", tmp_path / "shards", shard_size=1, validation_split=6, progress=False
    )
    counts = [s["count"] for s in result.manifest["splits"]["train"]["shards"]]
    assert counts == [1] * 27  # shares of 14 and 13 images
    out = tmp_path / "job"
    config = _write_config(tmp_path / "job.toml", result.manifest_uri, out)
    sets = ["training.epochs=2", "training.batch_size=8", "data.image_size=[16, 16]"]
    argv = ["train", config, "--set", "distribution.strategy=data_parallel"]
    stdouts = _job(tmp_path, cnnkit_command(*argv, *sum((["--set", s] for s in sets), [])))
    digests = [line.split()[-1] for s in stdouts for line in s.splitlines() if "sha256" in line]
    assert len(digests) == 2 and digests[0] == digests[1]
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history] == [1, 2]
    assert all(0.0 <= e["val_accuracy"] <= 1.0 for e in history)


def test_a_job_of_several_processes_refuses_what_cannot_split(tmp_path, monkeypatch):
    from keras_cnnkit.errors import ConfigError
    from keras_cnnkit.training import _data

    write_tree(tmp_path / "src", per_class=3)
    result = pack(tmp_path / "src", tmp_path / "shards", shard_size=1, progress=False)
    monkeypatch.setattr(_data, "_process_layout", lambda: (2, 0))
    config = {"train": result.manifest_uri, "image_size": [8, 8]}
    with pytest.raises(ConfigError, match="batch_size = 7 does not split between 2"):
        _data.load_data(config, batch_size=7)
    with pytest.raises(ConfigError, match="data.service with 2 training processes"):
        _data.load_data({**config, "service": "127.0.0.1:1"}, batch_size=8)
    data = _data.load_data(config, batch_size=8)
    assert data.process_sharded and data.num_train == 2 * 5  # shares of 5 and 4 images
    assert int(data.streams[0].cardinality()) == 2  # local batches of 4: 4 + 1
