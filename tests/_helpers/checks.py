"""Reusable checks for keras_cnnkit layers and models."""

from __future__ import annotations

import pathlib

import keras
import numpy as np


def check_keras_roundtrip(model: keras.Model, x, tmp_path: pathlib.Path) -> keras.Model:
    """Save ``model`` to ``.keras``, load it without custom_objects, assert identical outputs."""
    expected = model.predict(x, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    got = loaded.predict(x, verbose=0)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    return loaded


def check_layer(
    layer_cls,
    init_kwargs: dict,
    input_shape,
    expected_output_shape,
    tmp_path,
    input_dtype="float32",
):
    """Build the layer: shapes, config round trip, .keras round trip, one fit step."""
    layer = layer_cls(**init_kwargs)
    rng = np.random.default_rng(0)
    x = (rng.uniform(0, 255, size=input_shape)).astype(input_dtype)
    y = layer(x)
    assert tuple(y.shape) == tuple(expected_output_shape)
    # config round trip
    config = layer.get_config()
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config
    # registered under keras_cnnkit
    assert keras.saving.get_registered_name(layer_cls) == f"keras_cnnkit>{layer_cls.__name__}"
    # inside a functional model: one training step and a .keras round trip
    inputs = keras.Input(input_shape[1:], dtype=input_dtype)
    outputs = layer_cls(**init_kwargs)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros(tuple(expected_output_shape), "float32"), epochs=1, verbose=0)
    check_keras_roundtrip(model, x, tmp_path)
    return layer
