"""from_shards: the folder route's pixels and labels from packed shards, per-process shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from _shard_helpers import CLASSES, write_tree

from keras_cnnkit.data import from_directory, from_shards, pack
from keras_cnnkit.errors import DataError, IntegrityError

pytestmark = pytest.mark.tensorflow(reason="shards are read with tf.data")


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    keys = write_tree(root / "src", per_class=14)
    result = pack(
        root / "src", root / "out", shard_size="8KB", validation_split=0.25, seed=1, progress=False
    )
    return root, keys, result


def test_same_pixels_and_labels_as_the_folder_route(packed):
    root, keys, result = packed
    manifest = root / "out" / "manifest.json"
    for subset, split in (("training", "train"), ("validation", "validation")):
        folder = from_directory(
            root / "src",
            image_size=(16, 12),
            batch_size=None,
            shuffle=False,
            validation_split=0.25,
            subset=subset,
            seed=1,
        )
        shards = from_shards(
            manifest,
            split=split,
            image_size=(16, 12),
            batch_size=None,
            shuffle=False,
            include_filenames=True,
        )
        got = {f.decode(): (x, y) for x, y, f in shards.as_numpy_iterator()}
        assert len(got) == len(folder.file_paths)
        for (x, y), path in zip(folder.as_numpy_iterator(), folder.file_paths):
            key = os.path.relpath(path, root / "src").replace(os.sep, "/")
            gx, gy = got[key]
            assert gx.dtype == x.dtype == np.uint8
            np.testing.assert_array_equal(gx, x)  # identical pixels
            assert gy == y
        assert shards.class_names == folder.class_names == list(CLASSES)
        assert shards.num_examples == len(folder.file_paths)


def test_batches_shuffle_across_shards_every_epoch_and_augment(packed):
    root, keys, result = packed
    manifest = root / "out" / "manifest.json"
    ds = from_shards(manifest, image_size=8, batch_size=None, seed=0, include_filenames=True)
    epochs = [[f.decode() for _, _, f in ds.as_numpy_iterator()] for _ in range(2)]
    n = result.manifest["splits"]["train"]["count"]
    assert sorted(epochs[0]) == sorted(epochs[1]) and len(set(epochs[0])) == n
    assert epochs[0] != epochs[1]  # reshuffled
    first_shard = {r for r in epochs[0][:8]}
    assert len({k.split("/")[0] for k in first_shard}) > 1
    batched = from_shards(manifest, image_size=8, batch_size=5, seed=0, label_mode="categorical")
    x, y = next(iter(batched))
    assert tuple(x.shape) == (5, 8, 8, 3) and tuple(y.shape) == (5, 3)
    plain = from_shards(manifest, image_size=8, batch_size=64, shuffle=False)
    flip = from_shards(
        manifest,
        image_size=8,
        batch_size=64,
        shuffle=False,
        augment=[__import__("keras").layers.RandomFlip("horizontal", seed=1)],
        seed=3,
    )
    xp, _ = next(iter(plain))
    xf, _ = next(iter(flip))
    np.testing.assert_allclose(
        np.sort(np.asarray(xf, "float32").ravel()), np.sort(np.asarray(xp, "float32").ravel())
    )
    assert not np.array_equal(np.asarray(xf, "float32"), np.asarray(xp, "float32"))


def test_patterns_leftovers_missing_and_corrupt_shards(packed, tmp_path):
    root, keys, result = packed
    out = root / "out"
    ds = from_shards(
        str(out / "validation-*.tfrecord"), image_size=8, batch_size=None, shuffle=False
    )
    assert ds.num_examples == result.manifest["splits"]["validation"]["count"]
    assert sum(1 for _ in ds) == ds.num_examples
    with pytest.raises(DataError, match="no split 'test'"):
        from_shards(out / "manifest.json", split="test")
    with pytest.raises(DataError, match="not found"):
        from_shards(tmp_path / "manifest.json")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in os.listdir(out):
        (copy / name).write_bytes((out / name).read_bytes())
    (copy / "train-09999.tfrecord").write_bytes(b"left over")
    with pytest.raises(DataError, match="train-09999.tfrecord.*unfinished pack"):
        from_shards(str(copy / "train-*.tfrecord"))
    first = result.manifest["splits"]["train"]["shards"][0]["name"]
    data = bytearray((copy / first).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / first).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=first):
        from_shards(copy / "manifest.json", verify=True)
    damaged = from_shards(copy / "manifest.json", image_size=8, shuffle=False)
    with pytest.raises(IntegrityError, match=f"{first}.*is damaged"):
        for _ in damaged:  # found mid-iteration, named
            pass
    with pytest.raises(DataError, match="shard.*for 99 processes"):
        from_shards(out / "manifest.json", num_processes=99, process_id=0)


READER = """
import json, sys
from keras_cnnkit.data import from_shards
ds = from_shards(sys.argv[1], image_size=8, batch_size=None, seed=0, include_filenames=True,
                 num_processes=2, process_id=int(sys.argv[2]))
names = [f.decode() for _, _, f in ds.as_numpy_iterator()]
print(json.dumps({"names": names, "files": ds.shard_files, "count": ds.num_examples}))
"""


def test_two_processes_read_each_image_once_per_epoch(packed):
    root, keys, result = packed
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    manifest = str(root / "out" / "manifest.json")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", READER, manifest, str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr[-2000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    files = [set(o["files"]) for o in outs]
    assert files[0] and files[1] and not files[0] & files[1]  # each reads its own shards
    names = [o["names"] for o in outs]
    assert len(names[0]) == outs[0]["count"] and len(names[1]) == outs[1]["count"]
    everything = names[0] + names[1]
    train = result.manifest["splits"]["train"]["count"]
    assert len(everything) == train and len(set(everything)) == train  # each image once
