"""Shared pytest configuration: quiet TensorFlow, seeds, and the shared CIFAR-10 data."""

from __future__ import annotations

import os
import pathlib
import tarfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
CIFAR_TARBALL = SHARED_DATA / "cifar10-train-jpeg.tar.gz"


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``tensorflow`` (with their reason) under another Keras backend."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    for item in items:
        marker = item.get_closest_marker("tensorflow")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(
                pytest.mark.skip(reason=f"needs the TensorFlow backend ({backend} here): {reason}")
            )


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield


@pytest.fixture(scope="session")
def cifar10_dir(tmp_path_factory) -> pathlib.Path:
    """The shared CIFAR-10 JPEG folder (``train/<class>/*.jpg``), extracted once per session.

    Skips the test when ``../shared/data`` is absent.
    """
    if not CIFAR_TARBALL.is_file():
        pytest.skip(f"shared CIFAR-10 data not found at {CIFAR_TARBALL}")
    cache = pathlib.Path(os.environ.get("CNNKIT_TEST_CACHE", "/tmp/cnnkit-test-cache"))
    root = cache / "cifar10-jpeg"
    done = root / ".extracted"
    if not done.exists():
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(CIFAR_TARBALL) as tar:
            tar.extractall(root, filter="data")
        done.touch()
    return root / "train"
