"""The names users reach for first are at the top level, as the same objects."""

import importlib

import pytest

import keras_cnnkit as ck


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("train", "keras_cnnkit.training"),
        ("TrainResult", "keras_cnnkit.training"),
        ("from_directory", "keras_cnnkit.data"),
        ("from_files", "keras_cnnkit.data"),
        ("data_config", "keras_cnnkit.data"),
        ("reset_classifier", "keras_cnnkit.models"),
    ],
)
def test_top_level_name_is_the_subpackage_object(name, home):
    assert name in ck.__all__
    assert getattr(ck, name) is getattr(importlib.import_module(home), name)
