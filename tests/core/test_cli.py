import json
import subprocess
import sys

from PIL import Image

from keras_cnnkit.cli.main import main
from keras_cnnkit.experiments import run_translation_experiment


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["precision"] in ("float32", "mixed_bfloat16", "mixed_float16")
    assert info["versions"]["keras"].startswith("3.")


def test_help_and_version(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "demo" in capsys.readouterr().out
    proc = subprocess.run(
        [sys.executable, "-m", "keras_cnnkit", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "keras-cnnkit" in proc.stdout


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2


def test_translation_experiment_shows_the_effect(tmp_path):
    result = run_translation_experiment(tmp_path, epochs=3, max_shift=8, shift_step=8)
    dense = result.results["dense"]
    assert dense.centered > 0.8
    assert dense.shifted_mean < dense.centered - 0.3  # a dense net does not follow moved digits
    assert result.results[result.best].shifted_mean > dense.shifted_mean
    assert result.reload_identical and result.model_path.exists()
    with Image.open(result.heatmap_path) as img:
        assert img.format == "PNG"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["best"] == result.best and len(saved["models"]) == 3


def test_debug_flag_before_or_after_the_command():
    from keras_cnnkit.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["--debug", "train", "run.toml"]).debug is True
    assert parser.parse_args(["train", "run.toml", "--debug"]).debug is True
    assert parser.parse_args(["train", "run.toml"]).debug is False
