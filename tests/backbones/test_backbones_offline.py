"""ImageNet weights and labels without network access: clear keras_cnnkit errors, fast."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_cnnkit.backbones import (
    build_classifier,
    decode_predictions,
    feature_extractor,
    imagenet_classifier,
    keras_cache_dir,
)
from keras_cnnkit.errors import DataError, SpecError, StorageError

REPO = pathlib.Path(__file__).resolve().parents[2]
MOBILENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"


@pytest.fixture
def short_socket_timeout():
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5)
    yield
    socket.setdefaulttimeout(old)


def test_imagenet_weights_offline_give_an_actionable_error(short_socket_timeout):
    if (keras_cache_dir() / MOBILENET_FILE).exists():
        pytest.skip("the ImageNet weights are already in the Keras cache")
    start = time.monotonic()
    with pytest.raises(StorageError) as info:
        build_classifier("mobilenetv2", 2, input_shape=(96, 96, 3), backbone_kwargs={"alpha": 0.35})
    assert time.monotonic() - start < 60
    message = str(info.value)
    assert "could not download the ImageNet weights of backbone 'mobilenetv2'" in message
    assert MOBILENET_FILE in message
    assert str(keras_cache_dir() / MOBILENET_FILE) in message
    assert "weights='/path/to/" in message and "weights=None" in message
    assert isinstance(info.value.__cause__, Exception)  # the original failure is chained


def test_feature_extractor_imagenet_offline(short_socket_timeout):
    if (keras_cache_dir() / MOBILENET_FILE).exists():
        pytest.skip("the ImageNet weights are already in the Keras cache")
    with pytest.raises(StorageError, match="ImageNet weights of backbone 'mobilenetv2'"):
        feature_extractor("mobilenetv2", input_shape=(96, 96, 3), backbone_kwargs={"alpha": 0.35})


def test_decode_predictions_offline_or_cached(short_socket_timeout):
    preds = np.zeros((2, 1000), "float32")
    preds[0, 1] = preds[1, 999] = 1.0
    if (keras_cache_dir() / "imagenet_class_index.json").exists():
        decoded = decode_predictions(preds, top=2)
        assert decoded[0][0][2] == 1.0 and len(decoded[1]) == 2
        return
    with pytest.raises(StorageError, match="imagenet_class_index.json.*copy that file to"):
        decode_predictions(preds)


def test_decode_predictions_checks_its_input():
    with pytest.raises(DataError, match=r"shape \(batch, 1000\), got \(2, 10\)"):
        decode_predictions(np.zeros((2, 10)))
    with pytest.raises(SpecError, match="top must be in 1..1000"):
        decode_predictions(np.zeros((1, 1000)), top=0)


def test_imagenet_classifier_with_random_weights():
    model = imagenet_classifier("mobilenet", weights=None)
    assert model.input_shape == (None, 224, 224, 3)
    probs = model.predict(np.zeros((1, 224, 224, 3), "uint8"), verbose=0)
    assert probs.shape == (1, 1000)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)


def test_keras_home_is_honoured(tmp_path):
    """In a fresh interpreter with KERAS_HOME set, weights are looked up under it."""
    code = (
        "import socket; socket.setdefaulttimeout(5)\n"
        "from keras_cnnkit.backbones import build_classifier, keras_cache_dir\n"
        "from keras_cnnkit.errors import StorageError\n"
        "print(keras_cache_dir())\n"
        "try:\n"
        "    build_classifier('mobilenetv2', 2, input_shape=(96, 96, 3),\n"
        "                     backbone_kwargs={'alpha': 0.35})\n"
        "except StorageError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "KERAS_HOME": str(tmp_path / "kh"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stderr[-2000:]
    assert lines[0] == str(tmp_path / "kh" / "models")
    assert str(tmp_path / "kh" / "models" / MOBILENET_FILE) in lines[-1]
