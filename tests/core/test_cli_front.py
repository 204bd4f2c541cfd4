"""The command line answers at once and prints only its own text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

#: Lines TensorFlow, absl or Keras write on their own (native logs, Python logging).
FOREIGN = re.compile(
    r"^([IWEF]\d{4} |WARNING: All log messages|INFO:tensorflow|WARNING:tensorflow|"
    r"WARNING:absl|.*(cuInit|oneDNN|cpu_feature_guard|rebuild TensorFlow)|"
    r".*`shuffle=True` was passed)"
)
# The library's own log lines (its precision choice may name oneDNN) are not foreign.
OWN = ("INFO keras_cnnkit:", "WARNING keras_cnnkit:")


def _run(args, **kwargs):
    env = dict(os.environ, COLUMNS="100")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, **kwargs
    )


def test_help_prints_the_help_text_and_nothing_else(monkeypatch):
    from keras_cnnkit.cli.main import build_parser

    monkeypatch.setenv("COLUMNS", "100")
    proc = _run(["-m", "keras_cnnkit", "--help"])
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert proc.stdout == build_parser().format_help()


PROBE = textwrap.dedent(
    """
    import sys
    from keras_cnnkit.cli.main import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    heavy = sorted(m for m in ("keras", "tensorflow", "jax", "numpy") if m in sys.modules)
    print("HEAVY", heavy)
    sys.exit(code)
    """
)


@pytest.mark.parametrize(
    "args, code",
    [(["--help"], 0), (["--version"], 0), (["train", "{config}"], 2), (["nope"], 2)],
)
def test_help_version_and_mistakes_load_no_backend(tmp_path, args, code):
    config = tmp_path / "run.toml"
    config.write_text('[data]\ntrain = "d.npz"\n[trainig]\nepochs = 1\n')
    argv = [a.format(config=config) for a in args]
    proc = _run(["-c", PROBE, *argv])
    assert proc.returncode == code, proc.stderr
    assert "HEAVY []" in proc.stdout
    if args[0] == "train":
        assert proc.stderr.strip() == (
            "cnnkit train: error: unknown section [trainig]; did you mean 'training'? "
            "(valid: data, distribution, model, output, training)"
        )


@pytest.mark.tensorflow("trains with TensorFlow")
def test_training_prints_no_tensorflow_or_keras_log_lines(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(48) % 3
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 255, (48, 8, 8, 3)).astype("uint8"), y=y)
    config = tmp_path / "run.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [data]
            train = "{tmp_path / "d.npz"}"
            validation_split = 0.25
            [model]
            spec = {{ stages = [4], head = {{ pooling = "avg" }} }}
            [training]
            epochs = 1
            batch_size = 8
            [output]
            dir = "{tmp_path / "out"}"
            """
        )
    )
    proc = _run(["-m", "keras_cnnkit", "train", str(config)])
    assert proc.returncode == 0, proc.stderr
    foreign = [
        line
        for line in proc.stderr.splitlines()
        if FOREIGN.match(line) and not line.startswith(OWN)
    ]
    assert foreign == []
    assert "val_loss:" in proc.stdout  # Keras' own progress line stays


@pytest.mark.tensorflow("reports the TensorFlow device")
def test_info_says_why_it_chose_the_precision():
    from keras_cnnkit.hardware import detect_hardware

    info = detect_hardware()
    proc = _run(["-m", "keras_cnnkit", "info"])
    assert proc.returncode == 0
    assert f"precision 'auto' chooses {info.precision} on this machine: {info.reason}." in (
        proc.stdout
    )
    assert [line for line in proc.stderr.splitlines() if FOREIGN.match(line)] == []
