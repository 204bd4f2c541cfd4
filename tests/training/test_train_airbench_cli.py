"""cnnkit train runs the cifar10_airbench recipe and records the values it used."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from _training_helpers import run_cli
from PIL import Image

from keras_cnnkit import io as ckio
from keras_cnnkit.errors import ConfigError
from keras_cnnkit.training._build import build_recipe, resolve_config
from keras_cnnkit.training.cifar10 import cifar10_airbench_recipe
from keras_cnnkit.training.config import load_config

pytestmark = pytest.mark.tensorflow("image folders are read through the tf.data pipeline")

DEFAULTS = {k: p.default for k, p in inspect.signature(cifar10_airbench_recipe).parameters.items()}


def _config(**sections):
    config = {
        "data": {"train": "images"},
        "model": {"recipe": "cifar10_airbench"},
        "output": {"dir": "run"},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


def test_airbench_trains_one_epoch_from_a_jpeg_folder_through_the_cli(tmp_path):
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cat", "dog", "emu")):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 200, (32, 32, 3)).astype("uint8")
            pixels[..., c] = 250
            Image.fromarray(pixels).save(tmp_path / "images" / name / f"{i}.jpg")
    (tmp_path / "run.toml").write_text(
        f"""
[data]
train = "{tmp_path / "images"}"
validation_split = 0.2

[model]
recipe = "cifar10_airbench"
options = {{ tta_level = 1 }}

[training]
epochs = 1
batch_size = 8
precision = "float32"

[output]
dir = "{tmp_path / "out"}"
"""
    )
    assert run_cli(["train", str(tmp_path / "run.toml"), "-q"]) == 0
    resolved = load_config(tmp_path / "out" / "config.toml")
    t, m = resolved.training, resolved.model
    assert (t["epochs"], t["batch_size"], t["precision"]) == (1, 8, "float32")
    for key in ("learning_rate", "momentum", "weight_decay", "label_smoothing", "warmup_fraction"):
        assert t[key] == pytest.approx(DEFAULTS[key]), key
    assert (t["optimizer"], t["schedule"]) == ("sgd", "")
    assert m["options"]["tta_level"] == 1
    for key in ("bias_scale", "translate", "flip", "alternating_flips", "whitening", "lookahead"):
        assert m["options"][key] == DEFAULTS[key], key
    assert resolved.data["cache"] == "auto"
    model, meta = ckio.load(tmp_path / "out" / "model.keras")
    assert meta.training["recipe"] == "cifar10_airbench"
    assert meta.class_names == ["cat", "dog", "emu"]
    assert model.get_layer("tta").level == 1
    assert model.predict(np.zeros((2, 32, 32, 3), "uint8"), verbose=0).shape == (2, 3)


def test_airbench_values_reach_the_recipe():
    cfg = resolve_config(
        load_config(
            _config(
                model={"options": {"translate": 3, "lookahead": False}},
                training={"batch_size": 64, "momentum": 0.9, "precision": "float32"},
            )
        )
    )
    assert cfg.training["momentum"] == 0.9 and cfg.training["learning_rate"] == 11.5
    recipe = build_recipe(cfg, (32, 32, 3), 10)
    assert (recipe.batch_size, recipe.epochs, recipe.translate) == (64, 10, 3)
    assert recipe.lookahead is False and recipe.flip is True
    assert recipe.model.get_layer("tta").level == DEFAULTS["tta_level"]
    # The resolved configuration, read back, resolves to itself.
    again = resolve_config(load_config(cfg))
    assert (again.training, again.model) == (cfg.training, cfg.model)


def test_training_augment_false_turns_off_the_airbench_flips_and_shifts():
    cfg = resolve_config(
        load_config(_config(training={"augment": False, "precision": "float32", "epochs": 1}))
    )
    recipe = build_recipe(cfg, (32, 32, 3), 10)
    assert (recipe.translate, recipe.flip) == (0, False)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            _config(model={"options": {"tta_levels": 1}}),
            "model.options.tta_levels: cifar10_airbench has no such option; "
            "did you mean 'tta_level'?",
        ),
        (
            _config(model={"options": {"whitening": 1}}),
            "model.options.whitening must be bool like its default True, got int 1",
        ),
        (
            _config(training={"optimizer": "adam"}),
            "leave training.optimizer and training.schedule unset (got optimizer = 'adam'",
        ),
        (
            _config(training={"schedule": "cosine"}),
            "schedule = 'cosine'",
        ),
    ],
)
def test_airbench_configuration_mistakes_are_named(config, message):
    with pytest.raises(ConfigError) as info:
        resolve_config(load_config(config))
    assert message in str(info.value)


def test_options_need_a_named_recipe():
    config = {
        "data": {"train": "images"},
        "model": {"spec": {"stages": [4]}, "options": {"tta_level": 1}},
        "output": {"dir": "run"},
    }
    with pytest.raises(ConfigError, match=r"model.options .*set model.recipe.*\(tta_level\)"):
        load_config(config)
