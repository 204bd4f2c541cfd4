"""A gs:// output keeps its training state in the bucket; a fresh machine resumes from it.

The bucket is a real fake-gcs-server on 127.0.0.1; "another machine" is a fresh local
cache (``CNNKIT_RUN_CACHE``), so the only state the second session can find is remote.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import uuid

import pytest
from _training_helpers import cnnkit_command, make_arrays, sigkill_once, write_config, write_npz

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "io"))
from _io_helpers import anonymous_client, emulator_env, start_fake_gcs  # noqa: E402

pytest.importorskip("google.cloud.storage")

pytestmark = pytest.mark.slow

# Enough epochs (about 1 s each) that the poller sees a middle one on a loaded machine.
EPOCHS = 8
MANIFEST = ".keras_cnnkit-manifest.json"


@pytest.fixture
def bucket_env(tmp_path):
    server = start_fake_gcs()
    client = anonymous_client(server.url)
    bucket = client.create_bucket(f"t-{uuid.uuid4().hex[:12]}")
    env = emulator_env(server.url)
    yield client, bucket, env
    client.close()
    server.stop()


def _remote_epoch(client, bucket) -> int | None:
    """The furthest complete remote training state (epoch), if any."""
    best = None
    for slot in ("a", "b"):
        if bucket.get_blob(f"run/checkpoints/{slot}/{MANIFEST}") is None:
            continue
        blob = bucket.get_blob(f"run/checkpoints/{slot}/training_metadata.json")
        if blob is not None:
            epoch = json.loads(blob.download_as_bytes())["epoch"]
            best = epoch if best is None else max(best, epoch)
    return best


def test_gs_output_resumes_from_the_bucket_on_a_fresh_machine(tmp_path, bucket_env):
    client, bucket, env = bucket_env
    data = write_npz(tmp_path / "d.npz", n=200)
    config = write_config(tmp_path / "run.toml", str(data), f"gs://{bucket.name}/run")
    argv = cnnkit_command(
        "train",
        str(config),
        "--set",
        f"training.epochs={EPOCHS}",
        "--set",
        "training.batch_size=2",
        "--set",
        "training.checkpoint_every_steps=25",
    )
    first = {**env, "CNNKIT_RUN_CACHE": str(tmp_path / "machine-1")}

    def killable_epoch():
        epoch = _remote_epoch(client, bucket)
        return epoch if epoch is not None and 1 <= epoch < EPOCHS - 1 else None

    killed_at, _, log = sigkill_once(argv, first, killable_epoch, timeout_s=120, poll_s=0.05)
    assert killed_at is not None, f"no remote checkpoint appeared before the run ended:\n{log}"
    assert bucket.get_blob("run/model.keras") is None

    # Another machine: an empty cache, so the state can only come from the bucket.
    second = {**env, "CNNKIT_RUN_CACHE": str(tmp_path / "machine-2")}
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=second)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    resumed = _resumed_epoch(rerun.stdout)
    assert resumed is not None and resumed >= killed_at + 1, rerun.stdout
    assert "Epoch 1/" not in rerun.stdout and f"Epoch {EPOCHS}/{EPOCHS}" in rerun.stdout

    history = json.loads(bucket.blob("run/history.json").download_as_bytes())
    assert [e["epoch"] for e in history] == list(range(1, EPOCHS + 1))
    summary = json.loads(bucket.blob("run/summary.json").download_as_bytes())
    assert summary["initial_epoch"] == resumed - 1 and summary["epochs"] == EPOCHS
    # The training state is gone from the bucket once the run is finished.
    assert not [b.name for b in client.list_blobs(bucket, prefix="run/checkpoints/")]

    from keras_cnnkit import io as ckio

    model, meta = ckio.load(
        f"gs://{bucket.name}/run/model.keras", gcs=ckio.GCSOptions(client=client)
    )
    assert meta.training["epoch"] == EPOCHS
    assert model.predict(make_arrays(4)[0], verbose=0).shape == (4, 3)

    # A third machine does not retrain over the finished run.
    third = {**env, "CNNKIT_RUN_CACHE": str(tmp_path / "machine-3")}
    again = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=third)
    assert again.returncode != 0 and "already holds a finished run" in again.stderr


def _resumed_epoch(stdout: str) -> int | None:
    marker = "(resumed at epoch "
    if marker not in stdout:
        return None
    return int(stdout.split(marker, 1)[1].split(")", 1)[0])
