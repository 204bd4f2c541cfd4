"""Saved .keras files omit arguments that only newer Keras releases know, at their defaults."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np

from keras_cnnkit import io as cio
from keras_cnnkit.io._portable import LATER_DEFAULTS, class_names, portable_config
from keras_cnnkit.layers import BatchNorm


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_portable_config_drops_only_default_values():
    init = {"module": "keras.initializers", "class_name": "GlorotUniform"}
    config = {
        "a": {**init, "config": {"seed": 3, "input_axes": None, "output_axes": None}},
        "b": {**init, "config": {"seed": None, "input_axes": [0], "output_axes": None}},
        "bn": {
            "module": "keras_cnnkit.layers.batch_norm",
            "class_name": "BatchNorm",
            "registered_name": "keras_cnnkit>BatchNorm",
            "config": {"renorm": True, "renorm_clipping": None, "renorm_momentum": 0.99},
        },
        "other": {"module": "mine", "class_name": "GlorotUniform", "config": {"input_axes": None}},
    }
    cleaned, dropped = portable_config(config)
    assert cleaned["a"]["config"] == {"seed": 3}
    # A non-default value is kept: dropping it would change the model.
    assert cleaned["b"]["config"] == {"seed": None, "input_axes": [0]}
    assert cleaned["bn"]["config"] == {"renorm": True}
    assert cleaned["other"]["config"] == {"input_axes": None}
    assert dropped == 2 + 1 + 2
    assert config["a"]["config"]["input_axes"] is None  # the input is not modified


def test_saved_archive_has_no_later_default_arguments_and_predicts_the_same(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, kernel_initializer="he_normal")(inputs)
    x = BatchNorm()(x)
    x = keras.layers.BatchNormalization()(x)
    outputs = keras.layers.Dense(2, kernel_initializer="glorot_uniform")(
        keras.layers.GlobalAveragePooling2D()(x)
    )
    model = keras.Model(inputs, outputs)
    path = tmp_path / "m.keras"
    cio.save(model, path)

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        assert archive.testzip() is None
    nodes = list(_walk(config))
    for classes, defaults in LATER_DEFAULTS:
        for node in nodes:
            if class_names(node) & classes and isinstance(node.get("config"), dict):
                for key, default in defaults.items():
                    assert node["config"].get(key, object()) != default, (node["class_name"], key)

    x = np.random.default_rng(0).random((3, 8, 8, 3)).astype("float32")
    loaded, _ = cio.load(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
