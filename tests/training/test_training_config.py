import pytest

from keras_cnnkit.errors import ConfigError
from keras_cnnkit.training.config import RunConfig, load_config, parse_override

BASE = {
    "data": {"train": "d.npz"},
    "model": {"spec": {"stages": [8], "head": {"pooling": "avg"}}},
    "output": {"dir": "run"},
}


def test_defaults_are_filled_and_toml_round_trips(tmp_path):
    cfg = load_config(BASE, ["training.epochs=3", "training.jit_compile=false"])
    assert cfg.training["epochs"] == 3 and cfg.training["jit_compile"] is False
    assert cfg.distribution["strategy"] == "auto" and cfg.data["validation_split"] == 0.0
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml())
    assert load_config(path).to_dict() == cfg.to_dict()


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(ConfigError, match=r"training\.epoch\b.*did you mean 'epochs'"):
        load_config({**BASE, "training": {"epoch": 3}})
    with pytest.raises(ConfigError, match="did you mean 'training'"):
        load_config({**BASE, "trainig": {}})
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        load_config(BASE, ["training.batchsize=8"])


def test_wrong_type_names_the_key_and_expected_type():
    with pytest.raises(ConfigError, match=r"training\.epochs must be an integer, got str"):
        load_config(BASE, ['training.epochs="3"'])
    with pytest.raises(ConfigError, match=r"training\.augment must be a boolean"):
        load_config({**BASE, "training": {"augment": 1}})
    with pytest.raises(ConfigError, match=r"model\.spec must be a table"):
        load_config({**BASE, "model": {"spec": [8]}})


def test_bad_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match="exactly one of 'recipe', 'spec' or 'backbone'"):
        load_config({**BASE, "model": {"spec": {"stages": [8]}, "recipe": "cifar10_fast"}})
    with pytest.raises(ConfigError, match=r"distribution\.strategy = 'mpi'"):
        load_config(BASE, ["distribution.strategy=mpi"])
    with pytest.raises(ConfigError, match="data.train is required"):
        load_config({"model": BASE["model"], "output": BASE["output"]})
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\ntrain = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_parse_override():
    assert parse_override("data.image_size=[16, 16]") == ("data", "image_size", [16, 16])
    assert parse_override("output.dir=runs/a") == ("output", "dir", "runs/a")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("epochs=3")
    assert isinstance(RunConfig.from_dict(BASE), RunConfig)
