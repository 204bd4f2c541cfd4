"""Training from packed shards (local and in a bucket) matches training from the folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _shard_helpers import gcs_bucket, write_tree

from keras_cnnkit.data import pack
from keras_cnnkit.errors import ConfigError, DataError

pytestmark = pytest.mark.tensorflow(reason="shards are read with tf.data")

#: One batch per epoch, no shuffling or augmentation: the image order cannot matter.
EXACT = [
    "training.epochs=3",
    "training.batch_size=64",
    "training.shuffle=false",
    "training.augment=false",
    "training.optimizer=sgd",
    "training.learning_rate=0.05",
    "training.precision=float32",
    "training.top_k=2",
    "data.image_size=[16, 16]",
]


def _config(tmp_path, train, out, *extra):
    return {
        "data": {"train": str(train), "validation_split": 0.25},
        "model": {"spec": {"stages": [4], "head": {"pooling": "avg"}}},
        "output": {"dir": str(out)},
    }, [*EXACT, *extra]


def test_train_from_shards_gives_the_folder_result(tmp_path):
    from keras_cnnkit.training import train

    write_tree(tmp_path / "src", per_class=10)
    result = pack(
        tmp_path / "src",
        tmp_path / "shards",
        shard_size="8KB",
        validation_split=0.25,
        seed=0,
        progress=False,
    )
    folder = train(*_config(tmp_path, tmp_path / "src", tmp_path / "o1"), verbose=0)
    shards = train(*_config(tmp_path, result.manifest_uri, tmp_path / "o2"), verbose=0)
    np.testing.assert_allclose(
        [e["loss"] for e in shards.history], [e["loss"] for e in folder.history], rtol=1e-4
    )
    assert [e["val_accuracy"] for e in shards.history] == [
        e["val_accuracy"] for e in folder.history
    ]
    meta = json.loads((tmp_path / "o2" / "model.keras.json").read_text())
    assert meta["class_names"] == ["cat", "dog", "frog"]


@pytest.mark.slow  # about 40 s: a pack to the bucket and two trainings
def test_train_from_a_bucket(tmp_path):
    from keras_cnnkit.training import train

    write_tree(tmp_path / "src", per_class=6)
    local = pack(tmp_path / "src", tmp_path / "shards", validation_split=0.25, progress=False)
    with gcs_bucket() as (client, bucket, env, gcs):
        import os

        uri = f"gs://{bucket.name}/set"
        pack(tmp_path / "src", uri, validation_split=0.25, progress=False, gcs=gcs)
        old = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = env["STORAGE_EMULATOR_HOST"]
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "test-project")
        try:
            remote = train(
                *_config(
                    tmp_path,
                    f"{uri}/manifest.json",
                    tmp_path / "o1",
                    f'data.shard_cache="{tmp_path / "cache"}"',
                ),
                verbose=0,
            )
        finally:
            if old is None:
                os.environ.pop("STORAGE_EMULATOR_HOST")
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = old
    here = train(*_config(tmp_path, local.manifest_uri, tmp_path / "o2"), verbose=0)
    np.testing.assert_allclose(
        [e["loss"] for e in remote.history], [e["loss"] for e in here.history], rtol=1e-4
    )


def test_shard_config_errors(tmp_path):
    from keras_cnnkit.training import train

    write_tree(tmp_path / "src", per_class=3)
    result = pack(tmp_path / "src", tmp_path / "shards", progress=False)
    with pytest.raises(DataError, match="no validation split"):
        train(*_config(tmp_path, result.manifest_uri, tmp_path / "o"), verbose=0)
    cfg, sets = _config(tmp_path, tmp_path / "src", tmp_path / "o3", 'data.service="127.0.0.1:1"')
    with pytest.raises(ConfigError, match="pack it first"):
        train(cfg, sets, verbose=0)


def test_train_from_a_folder_tree_in_a_bucket(tmp_path, monkeypatch):
    from keras_cnnkit.data._store import mirror_folder
    from keras_cnnkit.training import train

    keys = write_tree(tmp_path / "src", per_class=6)
    with gcs_bucket() as (client, bucket, env, gcs):
        for key in keys:
            bucket.blob(f"tree/{key}").upload_from_filename(str(tmp_path / "src" / key))
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", env["STORAGE_EMULATOR_HOST"])
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
        cache = tmp_path / "cache"
        remote = train(
            *_config(
                tmp_path, f"gs://{bucket.name}/tree", tmp_path / "o1", f'data.shard_cache="{cache}"'
            ),
            verbose=0,
        )
        local_copy = mirror_folder(f"gs://{bucket.name}/tree", cache, gcs)
        copied = sorted(str(p.relative_to(local_copy)) for p in local_copy.rglob("*.*"))
        assert copied == sorted(keys)
        stamp = (local_copy / keys[0]).stat().st_mtime_ns
        bucket.blob(f"tree/{keys[1]}").delete()
        again = mirror_folder(f"gs://{bucket.name}/tree", cache, gcs)
        assert (again / keys[0]).stat().st_mtime_ns == stamp  # kept, not fetched again
        assert not (again / keys[1]).exists()  # gone from the bucket, gone from the copy
    here = train(*_config(tmp_path, tmp_path / "src", tmp_path / "o2"), verbose=0)
    np.testing.assert_allclose(
        [e["loss"] for e in remote.history], [e["loss"] for e in here.history], rtol=1e-5
    )
