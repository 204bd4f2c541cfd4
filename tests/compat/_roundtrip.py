"""Save library models under one TensorFlow/Keras, load and compare them under another.

Run by ``test_cross_version.py`` with the interpreter of each tox environment:

    python _roundtrip.py save DIR   # builds, trains one step, saves .keras + inputs + outputs
    python _roundtrip.py load DIR   # loads every .keras in DIR, predicts, prints the max error

It is a script (not imported by the tests) because each side needs its own interpreter.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_cnnkit  # noqa: E402
from keras_cnnkit import io as cio  # noqa: E402
from keras_cnnkit.backbones import build_classifier  # noqa: E402
from keras_cnnkit.models import cifar10_classic, cifar10_fast, conv_stack  # noqa: E402


def _versions() -> dict:
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "keras_cnnkit": keras_cnnkit.__version__,
    }


def _models() -> dict:
    """One model per kind of object the library puts in a .keras file."""
    spec = {
        "stages": [
            {"filters": 8, "convs": 2, "pool": "max", "dropout": 0.1},
            {"filters": 16, "pool": "max", "residual": 1},
        ],
        "head": {"pooling": "avgmax", "hidden_units": [16], "dropout": 0.2},
        "preprocessing": "unit",
    }
    return {
        "classic": (cifar10_classic(), (32, 32, 3), "float32"),
        "fast": (cifar10_fast(width=0.25), (32, 32, 3), "float32"),
        "spec": (conv_stack(spec, num_classes=5), (32, 32, 3), "uint8"),
        "backbone": (
            build_classifier(
                "mobilenet_v3_small",
                num_classes=4,
                input_shape=(64, 64, 3),
                weights=None,
                freeze_backbone=False,
                dropout=0.2,
            ),
            (64, 64, 3),
            "uint8",
        ),
    }


def save(folder: pathlib.Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    for name, (model, shape, dtype) in _models().items():
        x = rng.integers(0, 256, size=(8, *shape)).astype(dtype)
        classes = int(model.output_shape[-1])
        y = rng.integers(0, classes, size=(8,))
        # One step of training so BatchNorm statistics and optimizer slots are not at their init.
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        cio.save(model, folder / f"{name}.keras", {"class_names": [str(i) for i in range(classes)]})
        np.savez(folder / f"{name}.npz", x=x, y=np.asarray(model.predict(x, verbose=0)))
    (folder / "versions.json").write_text(json.dumps(_versions()))
    print(json.dumps({"saved": sorted(_models()), **_versions()}))


def load(folder: pathlib.Path) -> None:
    errors = {}
    for path in sorted(folder.glob("*.keras")):
        loaded = cio.load(path)
        data = np.load(path.with_suffix(".npz"))
        pred = np.asarray(loaded.model.predict(data["x"], verbose=0))
        errors[path.stem] = {
            "max_abs_error": float(np.max(np.abs(pred - data["y"]))),
            "same_argmax": bool((pred.argmax(-1) == data["y"].argmax(-1)).all()),
            "class_names": list(loaded.metadata.class_names or []),
        }
    print(json.dumps({"loaded": errors, **_versions()}))


if __name__ == "__main__":
    mode, where = sys.argv[1], pathlib.Path(sys.argv[2])
    {"save": save, "load": load}[mode](where)
