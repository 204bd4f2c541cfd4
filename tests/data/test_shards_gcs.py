"""Shards in a bucket on a real fake-gcs-server: cnnkit pack to gs://, from_shards from gs://."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
from _shard_helpers import cnnkit_command, gcs_bucket, write_tree

from keras_cnnkit.data import from_shards, pack
from keras_cnnkit.errors import DataError, StorageError

pytest.importorskip("google.cloud.storage")
pytestmark = pytest.mark.tensorflow(reason="shards are read with tf.data")


def _pixels(ds):
    return {f.decode(): (x, y) for x, y, f in ds.as_numpy_iterator()}


def test_pack_to_a_bucket_and_read_it_back_through_a_checked_cache(tmp_path):
    keys = write_tree(tmp_path / "src", per_class=6)
    (tmp_path / "src" / "cat" / "bad.jpg").write_bytes(b"nope")
    local = pack(tmp_path / "src", tmp_path / "local", shard_size="6KB", progress=False)
    with gcs_bucket() as (client, bucket, env, gcs):
        uri = f"gs://{bucket.name}/sets/demo"
        # The command line, in its own process, reaching the server by STORAGE_EMULATOR_HOST.
        proc = subprocess.run(
            cnnkit_command("pack", str(tmp_path / "src"), uri, "--shard-size", "6KB"),
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "bad.jpg" in proc.stderr
        names = sorted(b.name for b in client.list_blobs(bucket))
        shard_names = [s["name"] for s in local.manifest["splits"]["train"]["shards"]]
        assert names == sorted(
            [f"sets/demo/{n}" for n in shard_names] + ["sets/demo/manifest.json"]
        )
        cache = tmp_path / "cache"
        remote = from_shards(
            f"{uri}/manifest.json",
            image_size=8,
            batch_size=None,
            shuffle=False,
            include_filenames=True,
            cache_dir=cache,
            gcs=gcs,
        )
        here = from_shards(
            tmp_path / "local" / "manifest.json",
            image_size=8,
            batch_size=None,
            shuffle=False,
            include_filenames=True,
        )
        a, b = _pixels(remote), _pixels(here)
        assert sorted(a) == sorted(keys)
        for key in keys:
            np.testing.assert_array_equal(a[key][0], b[key][0])
            assert a[key][1] == b[key][1]
        assert [s.path.endswith("bad.jpg") for s in remote.report] == [True]
        cached = sorted(os.listdir(os.path.dirname(remote.shard_files[0])))
        assert [n for n in cached if n.endswith(".tfrecord")] == shard_names
        # Warm: a shard deleted from the bucket is still read from the cache...
        bucket.blob(f"sets/demo/{shard_names[0]}").delete()
        again = from_shards(
            f"{uri}/manifest.json",
            image_size=8,
            batch_size=None,
            shuffle=False,
            cache_dir=cache,
            gcs=gcs,
        )
        assert sum(1 for _ in again) == len(keys)
        # ...and a cached shard that does not match the manifest is fetched again (here: gone).
        with open(remote.shard_files[0], "r+b") as f:
            f.write(b"\0")
        (
            cache
            / os.path.basename(os.path.dirname(remote.shard_files[0]))
            / (shard_names[0] + ".sha256")
        ).write_text("0" * 64)
        with pytest.raises(StorageError, match=shard_names[0]):
            from_shards(f"{uri}/manifest.json", cache_dir=cache, gcs=gcs)
        with pytest.raises(DataError, match="not found"):
            from_shards(f"gs://{bucket.name}/nothing/manifest.json", gcs=gcs)


@pytest.mark.slow  # about 40 s: a cnnkit pack process killed mid-upload, then resumed
def test_killed_pack_to_a_bucket_resumes_without_duplicates(tmp_path):
    import json

    from _shard_helpers import records, sigkill_once

    keys = write_tree(tmp_path / "src", per_class=40, size=(48, 40))
    with gcs_bucket() as (client, bucket, env, gcs):
        uri = f"gs://{bucket.name}/p"
        argv = cnnkit_command("pack", str(tmp_path / "src"), uri, "--shard-size", "4KB")

        def ready():
            blob = bucket.get_blob("p/.pack-state.json")
            if blob is None:
                return None
            done = len(json.loads(blob.download_as_bytes())["splits"]["train"]["shards"])
            return done if done >= 3 else None

        done, code, output = sigkill_once(argv, env, ready, timeout_s=180, poll_s=0.05)
        assert done is not None and code == -9, output[-2000:]
        assert bucket.get_blob("p/manifest.json") is None
        result = pack(tmp_path / "src", uri, shard_size="4KB", progress=False, gcs=gcs)
        assert result.resumed
        shards = result.manifest["splits"]["train"]["shards"]
        names = sorted(b.name for b in client.list_blobs(bucket))
        assert names == sorted([f"p/{s['name']}" for s in shards] + ["p/manifest.json"])
        filenames = []
        for shard in shards:
            path = tmp_path / shard["name"]
            bucket.blob(f"p/{shard['name']}").download_to_filename(str(path))
            filenames += [r["filename"] for r in records(path)]
        assert sorted(filenames) == sorted(keys)
