"""Export benchmark: SavedModel and TFLite at every precision, TFLite quantization.

A fast CIFAR-10 network (``cifar10_fast``, width 0.25) is trained briefly by its recipe
on CIFAR-10 training JPEGs from ``../shared/data`` (1,000 per class, a seeded tenth held
out).
On the held-out JPEG files it reports, for each export:

* the model computing in float32, mixed bfloat16 and mixed float16: the largest
  difference of a class probability between the SavedModel / ``.tflite`` file and
  the Keras model, and their top-1 agreement;
* TFLite without quantization, with float16 weights and with int8 weights and
  activations (calibrated on 100 training images through a ``tf.data`` pipeline):
  file size, top-1 agreement with the Keras model and accuracy.

Writes ``benchmarks/results/io_export.json`` and ``.md``.
Run: ``python benchmarks/io_export.py [--per-class 1000] [--epochs 8]``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import CACHE, SHARED_CIFAR, machine, machine_markdown, write_results  # noqa: E402

import keras_cnnkit  # noqa: E402
from keras_cnnkit.io import export  # noqa: E402
from keras_cnnkit.models import cast_precision  # noqa: E402
from keras_cnnkit.training import cifar10_fast_recipe  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
QUANTIZATIONS = (None, "float16", "int8")


def _tflite_scores(path: pathlib.Path, images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    return np.concatenate(
        [runner(images=images[i : i + 250])["scores"] for i in range(0, len(images), 250)]
    )


def _savedmodel_scores(path: pathlib.Path, images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    return np.concatenate(
        [
            fn(images=tf.constant(images[i : i + 250]))["scores"].numpy()
            for i in range(0, len(images), 250)
        ]
    )


def _compare(scores: np.ndarray, reference: np.ndarray) -> dict:
    return {
        "max_abs_diff": float(np.max(np.abs(scores - reference))),
        "top1_agreement": float(np.mean(scores.argmax(-1) == reference.argmax(-1))),
    }


def main(argv=None) -> int:
    import tensorflow as tf

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    if not SHARED_CIFAR.exists():
        raise SystemExit(f"CIFAR-10 images not found at {SHARED_CIFAR}")

    data = keras_cnnkit.load_image_folder(
        SHARED_CIFAR, subdir="train", cache_dir=CACHE, max_per_class=args.per_class
    )
    train, test = data.split(len(data.y) // 10, seed=0)
    keras.utils.set_random_seed(0)
    recipe = cifar10_fast_recipe(epochs=args.epochs, width=0.25, precision="float32")
    start = time.perf_counter()
    recipe.fit(train.x, train.y, epochs=args.epochs, verbose=2)
    train_s = time.perf_counter() - start
    model = recipe.model
    reference = model.predict(test.x, verbose=0)
    results: dict = {
        "setup": {
            "model": "cifar10_fast(width=0.25)",
            "params": int(model.count_params()),
            "train_images": int(len(train.y)),
            "test_images": int(len(test.y)),
            "epochs": args.epochs,
            "train_seconds": train_s,
            "keras_accuracy": float(np.mean(reference.argmax(-1) == test.y)),
        },
        "precision": {},
        "tflite": {},
        "machine": machine(),
    }

    with tempfile.TemporaryDirectory(prefix="cnnkit-export-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        for precision in PRECISIONS:
            keras_model = cast_precision(model, precision)
            expected = keras_model.predict(test.x, verbose=0)
            export(keras_model, tmp / f"{precision}_saved")
            tflite = tmp / f"{precision}.tflite"
            export(keras_model, tflite, format="tflite")
            results["precision"][precision] = {
                "savedmodel": _compare(
                    _savedmodel_scores(tmp / f"{precision}_saved", test.x), expected
                ),
                "tflite": _compare(_tflite_scores(tflite, test.x), expected),
            }
        calibration = tf.data.Dataset.from_tensor_slices((train.x, train.y)).shuffle(1000, seed=0)
        for quantization in QUANTIZATIONS:
            name = quantization or "none"
            path = tmp / f"q_{name}.tflite"
            export(
                model,
                path,
                format="tflite",
                quantization=quantization,
                representative_data=calibration.batch(32) if quantization == "int8" else None,
            )
            scores = _tflite_scores(path, test.x)
            results["tflite"][name] = {
                "bytes": path.stat().st_size,
                "accuracy": float(np.mean(scores.argmax(-1) == test.y)),
                **_compare(scores, reference),
            }
    write_results("io_export", results, markdown(results))
    return 0


def markdown(r: dict) -> str:
    s = r["setup"]
    base = r["tflite"]["none"]["bytes"]
    lines = [
        "# Export benchmark: precisions and TFLite quantization",
        "",
        f"{s['model']} ({s['params']:,} parameters) trained by `cifar10_fast_recipe` for "
        f"{s['epochs']} epochs on "
        f"{s['train_images']:,} CIFAR-10 training JPEGs ({s['train_seconds']:.0f} s); "
        f"scores on {s['test_images']:,} held-out JPEG files; Keras accuracy "
        f"{s['keras_accuracy']:.3f}.",
        machine_markdown(r["machine"]),
        "",
        "Each model computing at a precision, exported: the largest difference of a class",
        "probability from the same Keras model, and the top-1 agreement with it. TFLite",
        "files are float32 graphs (mixed-precision models are cast to float32 on export).",
        "",
        "| model precision | SavedModel max abs diff | SavedModel agreement "
        "| TFLite max abs diff | TFLite agreement |",
        "|---|---:|---:|---:|---:|",
    ]
    for precision, row in r["precision"].items():
        sm, tfl = row["savedmodel"], row["tflite"]
        lines.append(
            f"| {precision} | {sm['max_abs_diff']:.2g} | {sm['top1_agreement']:.3f} "
            f"| {tfl['max_abs_diff']:.2g} | {tfl['top1_agreement']:.3f} |"
        )
    lines += [
        "",
        "TFLite quantization of the float32 model (int8 calibrated on 100 training images",
        "from a `tf.data` pipeline); agreement is top-1 agreement with the Keras model.",
        "",
        "| quantization | file size (KB) | size vs float32 | top-1 agreement "
        "| max abs diff | accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in r["tflite"].items():
        lines.append(
            f"| {name} | {row['bytes'] / 1024:.0f} | {row['bytes'] / base:.2f}x "
            f"| {row['top1_agreement']:.3f} | {row['max_abs_diff']:.2g} | {row['accuracy']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
