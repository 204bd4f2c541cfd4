"""One training engine: a recipe named in a configuration trains as the recipe says."""

from __future__ import annotations

import numpy as np
import pytest

from keras_cnnkit import io as ckio
from keras_cnnkit.training import train
from keras_cnnkit.training.config import load_config

pytestmark = pytest.mark.tensorflow("trains through tf.data")


def _cifar_like(path, n=64):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 10
    x = rng.integers(0, 255, (n, 32, 32, 3)).astype("uint8")
    np.savez(path, x=x, y=y.astype("int32"))
    return path


def test_a_named_recipe_keeps_its_own_defaults(tmp_path):
    data = _cifar_like(tmp_path / "c.npz")
    config = {
        "data": {"train": str(data)},
        "model": {"recipe": "cifar10_fast", "width": 0.125},
        "training": {"epochs": 1, "precision": "float32"},
        "output": {"dir": str(tmp_path / "out")},
    }
    result = train(config, verbose=0)
    resolved = load_config(tmp_path / "out" / "config.toml")
    t = resolved.training
    # cifar10_fast_recipe's own batch size, schedule, weight decay and smoothing;
    # the epochs the configuration set.
    assert (t["epochs"], t["batch_size"]) == (1, 512)
    assert (t["optimizer"], t["schedule"]) == ("sgd", "warmup_cosine")
    assert t["weight_decay"] == pytest.approx(5e-4)
    assert t["label_smoothing"] == pytest.approx(0.2)
    assert t["learning_rate"] == pytest.approx(0.4)
    assert t["warmup_fraction"] == pytest.approx(0.2)
    _, meta = ckio.load(tmp_path / "out" / "model.keras")
    assert meta.training["batch_size"] == 512 and meta.training["label_smoothing"] == 0.2
    assert meta.training["config"]["training"]["batch_size"] == 512
    assert result.model.optimizer.weight_decay == pytest.approx(5e-4)


def test_configuration_values_win_over_the_recipe_defaults(tmp_path):
    from keras_cnnkit.training._build import build_recipe, resolve_config

    cfg = resolve_config(
        load_config(
            {
                "data": {"train": "d.npz"},
                "model": {"recipe": "cifar10_fast", "width": 0.125},
                "training": {"batch_size": 64, "label_smoothing": 0.05, "precision": "float32"},
                "output": {"dir": "run"},
            }
        )
    )
    t = cfg.training
    assert (t["epochs"], t["batch_size"], t["label_smoothing"]) == (12, 64, 0.05)
    assert t["learning_rate"] == pytest.approx(0.4 * 64 / 512)  # the recipe's scaling rule
    recipe = build_recipe(cfg, (32, 32, 3), 10)
    assert (recipe.epochs, recipe.batch_size, recipe.label_smoothing) == (12, 64, 0.05)
    # Reading the resolved configuration back gives the same run.
    again = resolve_config(load_config(cfg))
    assert again.training == cfg.training


def test_classic_recipe_defaults(tmp_path):
    from keras_cnnkit.training._build import resolve_config

    cfg = resolve_config(
        load_config(
            {
                "data": {"train": "d.npz"},
                "model": {"recipe": "cifar10_classic"},
                "output": {"dir": "run"},
            }
        )
    )
    assert (cfg.training["epochs"], cfg.training["batch_size"]) == (100, 32)
    assert (cfg.training["optimizer"], cfg.training["learning_rate"]) == ("rmsprop", 1e-4)


def test_the_old_run_module_names_warn_and_still_work():
    from keras_cnnkit._deprecation import KerasCnnkitDeprecationWarning
    from keras_cnnkit.training import TrainResult, run
    from keras_cnnkit.training.distribute import process_shard

    with pytest.warns(KerasCnnkitDeprecationWarning, match="keras_cnnkit.training.TrainResult"):
        assert run.TrainResult is TrainResult
    with pytest.warns(KerasCnnkitDeprecationWarning, match="distribute.process_shard"):
        assert run.process_shard is process_shard
    with pytest.raises(AttributeError):
        run.no_such_name  # noqa: B018
