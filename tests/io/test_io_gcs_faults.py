import hashlib
import http.client
import http.server
import os
import pathlib
import socket
import threading
import time
import tracemalloc

import numpy as np
import pytest
from _io_helpers import anonymous_client

from keras_cnnkit.errors import IntegrityError, StorageError
from keras_cnnkit.io import GCSOptions, download, upload

MiB = 1 << 20


def _random_file(path: pathlib.Path, size: int, seed: int = 0) -> pathlib.Path:
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def _sparse_file(path: pathlib.Path, size: int) -> pathlib.Path:
    """A large file made fast: sparse, with random blocks at the start, middle and end."""
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        f.truncate(size)
        for offset in (0, size // 2, size - MiB):
            f.seek(offset)
            f.write(rng.integers(0, 256, MiB, dtype=np.uint8).tobytes())
    return path


def _sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def test_server_killed_mid_upload_then_retry(fake_gcs_factory, tmp_path):
    server = fake_gcs_factory(root=tmp_path / "gcs-data")  # on disk: survives a restart
    client = anonymous_client(server.url)
    client.create_bucket("kill-test").blob("keep.txt").upload_from_string(b"keep")
    src = _random_file(tmp_path / "big.bin", 20 * MiB)
    opts = GCSOptions(client=client, timeout=5, deadline=2, chunk_size=4 * MiB)
    uri = "gs://kill-test/models/big.bin"

    def kill_midway(done, total):
        if done > 8 * MiB:
            server.kill()

    start = time.monotonic()
    with pytest.raises(StorageError, match="failed.*retrying for 2 s") as err:
        upload(src, uri, gcs=opts, progress=kill_midway)
    assert time.monotonic() - start < 30
    assert "gs://kill-test/models/big.bin" in str(err.value)

    assert server.start()  # same port, same data
    assert sorted(b.name for b in client.list_blobs("kill-test")) == ["keep.txt"]
    result = upload(src, uri, gcs=opts, progress=False)
    assert result.bytes == 20 * MiB
    out = tmp_path / "back.bin"
    download(uri, out, gcs=opts, progress=False)
    assert _sha256(out) == _sha256(src)
    client.close()


def test_unreachable_server_fails_within_deadline(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = anonymous_client(f"http://127.0.0.1:{port}")
    opts = GCSOptions(client=client, timeout=1, deadline=1.5)
    src = _random_file(tmp_path / "a.bin", 100)
    start = time.monotonic()
    with pytest.raises(StorageError, match="retrying for 1.5 s"):
        upload(src, "gs://some-bucket/a.bin", gcs=opts, progress=False)
    assert time.monotonic() - start < 15
    client.close()


class _CorruptingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards to the storage server and flips one byte of every media download."""

    target_port = 0

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        skip = {"host", "connection", "accept-encoding", "content-length"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        conn = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=30)
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = bytearray(resp.read())
        if self.command == "GET" and "alt=media" in self.path and data:
            data[len(data) // 2] ^= 0x01
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(bytes(data))
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

    def log_message(self, *args):
        pass


def test_corrupted_download_is_detected(fake_gcs_factory, tmp_path):
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CorruptingProxy)
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    server = fake_gcs_factory(external_url=proxy_url)
    _CorruptingProxy.target_port = server.port
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        client = anonymous_client(proxy_url)
        client.create_bucket("corrupt-test")
        src = _random_file(tmp_path / "model.bin", 3 * MiB)
        opts = GCSOptions(client=client, timeout=10, deadline=3)
        upload(src, "gs://corrupt-test/model.bin", gcs=opts, progress=False)
        dest = tmp_path / "out" / "model.bin"
        dest.parent.mkdir()
        with pytest.raises(IntegrityError, match="does not match the checksum"):
            download("gs://corrupt-test/model.bin", dest, gcs=opts, progress=False)
        assert list(dest.parent.iterdir()) == []  # nothing kept, no temporary file left
        client.close()
    finally:
        proxy.shutdown()
        proxy.server_close()


def _bounded_memory_roundtrip(gcs_client, bucket, tmp_path, size):
    chunk = 8 * MiB
    opts = GCSOptions(client=gcs_client, timeout=60, deadline=30, chunk_size=chunk)
    src = _sparse_file(tmp_path / "big.bin", size)
    uri = f"gs://{bucket}/big.bin"
    tracemalloc.start()
    try:
        result = upload(src, uri, gcs=opts, progress=False)
        up_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        out = tmp_path / "back.bin"
        download(uri, out, gcs=opts, progress=False)
        down_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.bytes == size
    assert os.path.getsize(out) == size and _sha256(out) == _sha256(src)
    # Independent of the file size: about two chunks for an upload (measured 16 MiB
    # with 8 MiB chunks, for 20 MB and 200 MB alike), well under one for a download.
    assert up_peak < 3 * chunk, f"upload peaked at {up_peak / MiB:.0f} MiB"
    assert down_peak < chunk, f"download peaked at {down_peak / MiB:.0f} MiB"
    gcs_client.bucket(bucket).blob("big.bin").delete()


def test_upload_memory_is_bounded_20mb(gcs_client, bucket, tmp_path):
    _bounded_memory_roundtrip(gcs_client, bucket, tmp_path, 20 * 1000 * 1000)


@pytest.mark.slow
def test_upload_memory_is_bounded_200mb(gcs_client, bucket, tmp_path):
    _bounded_memory_roundtrip(gcs_client, bucket, tmp_path, 200 * 1000 * 1000)
