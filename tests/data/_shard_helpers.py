"""Image trees, shard readers and a fake-gcs-server bucket for the pack and shard tests."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import uuid

import numpy as np
from PIL import Image

_TESTS = pathlib.Path(__file__).resolve().parents[1]
for sub in ("io", "training"):
    if str(_TESTS / sub) not in sys.path:
        sys.path.insert(0, str(_TESTS / sub))

from _io_helpers import anonymous_client, emulator_env, start_fake_gcs  # noqa: E402
from _training_helpers import cnnkit_command, sigkill_once  # noqa: E402, F401

CLASSES = ("cat", "dog", "frog")


def write_tree(root: pathlib.Path, per_class: int = 12, seed: int = 0, size=(24, 20)) -> list[str]:
    """Class folders of random JPEG and PNG files of varied sizes; relative paths back."""
    rng = np.random.default_rng(seed)
    keys = []
    for c, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = size[1] + (i % 5), size[0] + (i % 3)
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            pixels[..., c] = np.maximum(pixels[..., c], 180)  # a learnable class signal
            ext = ".jpg" if i % 2 else ".png"
            Image.fromarray(pixels).save(folder / f"{i:03d}{ext}")
            keys.append(f"{name}/{i:03d}{ext}")
    return keys


def records(path) -> list[dict]:
    """The records of one shard, parsed."""
    import tensorflow as tf

    out = []
    for raw in tf.data.TFRecordDataset([os.fspath(path)]).as_numpy_iterator():
        ex = tf.train.Example.FromString(raw).features.feature
        out.append(
            {
                "image": ex["image"].bytes_list.value[0],
                "label": ex["label"].int64_list.value[0],
                "filename": ex["filename"].bytes_list.value[0].decode(),
            }
        )
    return out


@contextlib.contextmanager
def gcs_bucket():
    """A fresh bucket on a real fake-gcs-server on 127.0.0.1: ``(client, bucket, env, gcs)``."""
    from keras_cnnkit.io import GCSOptions

    server = start_fake_gcs()
    client = anonymous_client(server.url)
    bucket = client.create_bucket(f"t-{uuid.uuid4().hex[:12]}")
    env = emulator_env(server.url)
    try:
        yield client, bucket, env, GCSOptions(client=client, timeout=10, deadline=5)
    finally:
        for blob in client.list_blobs(bucket):
            with contextlib.suppress(Exception):
                blob.delete()
        client.close()
        server.stop()
