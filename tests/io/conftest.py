"""Fixtures for model I/O tests: tiny models and a real fake-gcs-server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import uuid

import keras
import numpy as np
import pytest
from _io_helpers import FakeGCS, anonymous_client, build_tiny_model, start_fake_gcs

MiB = 1 << 20


@pytest.fixture
def tiny_model() -> keras.Model:
    return build_tiny_model()


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def gcs_server():
    server = start_fake_gcs()
    yield server
    server.stop()


@pytest.fixture
def fake_gcs_factory():
    """Start extra servers for one test (killed, restarted...); all stopped afterwards."""
    servers = []

    def make(**kwargs) -> FakeGCS:
        server = start_fake_gcs(**kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def gcs_client(gcs_server):
    client = anonymous_client(gcs_server.url)
    yield client
    client.close()


@pytest.fixture
def bucket(gcs_client):
    """A fresh bucket name; every object in it and the bucket are deleted afterwards."""
    created = gcs_client.create_bucket(f"t-{uuid.uuid4().hex[:16]}")
    yield created.name
    for blob in gcs_client.list_blobs(created):
        with contextlib.suppress(Exception):
            blob.delete()
    created.delete()


@pytest.fixture
def gcs(gcs_client):
    """GCSOptions with the test client and short deadlines."""
    from keras_cnnkit.io import GCSOptions

    return GCSOptions(client=gcs_client, timeout=10, deadline=5, chunk_size=4 * MiB)
