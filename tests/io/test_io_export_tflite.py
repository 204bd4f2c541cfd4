"""SavedModel and TFLite exports of models at every precision, and TFLite quantization.

A small network is trained on the handwritten digits; the test images are written as
PNG and JPEG files and read back, and each ``.tflite`` file runs in the TFLite
interpreter against the Keras model.
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import pytest
from PIL import Image

from keras_cnnkit import conv_stack
from keras_cnnkit.errors import ConfigError, DataError, StorageError
from keras_cnnkit.io import export
from keras_cnnkit.layers import Normalize
from keras_cnnkit.models import cast_precision, compute_dtypes

pytestmark = [
    pytest.mark.tensorflow("SavedModel and TFLite export"),
    pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated"),
]

SIZE = 16
#: Largest absolute difference of a class probability from the Keras model's, by the
#: precision the model computes in (the export itself runs float32 for TFLite).
TOLERANCE = {"float32": 1e-5, "mixed_float16": 1e-2, "mixed_bfloat16": 5e-2}
#: Least top-1 agreement of a quantized .tflite with the Keras model on the test images.
AGREEMENT = {"float16": 0.99, "int8": 0.95}


def _digits(seed: int = 0):
    from sklearn.datasets import load_digits

    digits = load_digits()
    gray = (digits.images / 16.0 * 255.0).round().astype(np.uint8)
    gray = gray.repeat(2, axis=1).repeat(2, axis=2)  # 8x8 -> 16x16
    tint = np.random.default_rng(seed).uniform(0.6, 1.0, (len(gray), 1, 1, 3))
    rgb = (gray[..., None] * tint).round().astype(np.uint8)
    return rgb, digits.target.astype("int64")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A float32 model trained on digits; real PNG/JPEG test images read back from files."""
    keras.utils.set_random_seed(3)
    x, y = _digits()
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1500], order[1500:]
    model = conv_stack(
        {"stages": [16, 32, 64], "head": {"pooling": "avg"}, "norm_momentum": 0.9},
        input_shape=(SIZE, SIZE, 3),
        num_classes=10,
        dtype="float32",
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[train], y[train], epochs=8, batch_size=64, verbose=0)
    folder = tmp_path_factory.mktemp("images")
    files = []
    for i, index in enumerate(test):
        path = folder / (f"{i:03d}.png" if i % 2 else f"{i:03d}.jpg")
        Image.fromarray(x[index]).save(path, quality=92)
        files.append(path)
    images = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    accuracy = float(np.mean(model.predict(images, verbose=0).argmax(-1) == y[test]))
    assert accuracy > 0.85, accuracy  # a real classifier, so agreement means something
    return model, x[train], y[train], images


def _tflite_scores(path: pathlib.Path, images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    runner = tf.lite.Interpreter(model_path=str(path)).get_signature_runner("serving_default")
    return np.asarray(runner(images=images)["scores"])


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a.argmax(-1) == b.argmax(-1)))


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_savedmodel_and_tflite_at_every_precision(trained, precision, tmp_path):
    import tensorflow as tf

    base, _, _, images = trained
    model = cast_precision(base, precision)
    assert (compute_dtypes(model) - {"float32"}) == (
        set() if precision == "float32" else {precision.split("_")[1]}
    )
    expected = model.predict(images, verbose=0)

    export(model, tmp_path / "saved")
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    scores = loaded.signatures["serving_default"](images=tf.constant(images))["scores"].numpy()
    np.testing.assert_allclose(scores, expected, atol=TOLERANCE[precision])

    meta = export(model, tmp_path / "model.tflite", format="tflite")
    scores = _tflite_scores(tmp_path / "model.tflite", images)
    assert meta.size == (tmp_path / "model.tflite").stat().st_size
    np.testing.assert_allclose(scores, expected, atol=TOLERANCE[precision])
    # TFLite runs the float32 graph: the float32 model's scores.
    np.testing.assert_allclose(scores, base.predict(images, verbose=0), atol=1e-5)
    assert _agreement(scores, expected) >= 0.98


def test_float16_and_int8_quantization_on_real_images(trained, tmp_path):
    import tensorflow as tf

    model, x_train, y_train, images = trained
    expected = model.predict(images, verbose=0)
    plain = tmp_path / "float32.tflite"
    export(model, plain, format="tflite")

    half = tmp_path / "float16.tflite"
    meta = export(model, half, format="tflite", quantization="float16")
    assert meta.extra["quantization"] == "float16"
    assert _agreement(_tflite_scores(half, images), expected) >= AGREEMENT["float16"]
    assert half.stat().st_size < 0.6 * plain.stat().st_size

    # Calibrated on a training pipeline: batches of (images, labels).
    pipeline = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(256, seed=0)
    int8 = tmp_path / "int8.tflite"
    export(
        model, int8, format="tflite", quantization="int8", representative_data=pipeline.batch(32)
    )
    interpreter = tf.lite.Interpreter(model_path=str(int8))
    kinds = {d["dtype"] for d in interpreter.get_tensor_details()}
    assert np.int8 in kinds  # weights and activations really are int8
    assert _agreement(_tflite_scores(int8, images), expected) >= AGREEMENT["int8"]
    assert int8.stat().st_size < 0.4 * plain.stat().st_size

    # The same calibration from plain arrays.
    arrays = tmp_path / "int8_arrays.tflite"
    export(model, arrays, format="tflite", quantization="int8", representative_data=x_train)
    assert _agreement(_tflite_scores(arrays, images), expected) >= AGREEMENT["int8"]


class _Svd(keras.layers.Layer):
    """Singular values: an op the TFLite runtime does not have."""

    def call(self, x):
        import tensorflow as tf

        x = keras.ops.mean(x, axis=-1)
        return tf.linalg.svd(x, compute_uv=False)


def test_converter_failure_is_one_short_error_with_its_log(tmp_path):
    inputs = keras.Input((8, 8, 3), dtype="uint8", name="images")
    model = keras.Model(inputs, _Svd()(Normalize.from_preset("unit")(inputs)), name="svd")
    target = tmp_path / "svd.tflite"
    with pytest.raises(StorageError) as info:
        export(model, target, format="tflite")
    message = str(info.value)
    assert len(message) < 600, message
    assert "'tf.Svd' op is neither a custom op nor a flex op" in message
    log = pathlib.Path(message.split("the converter's log is in '")[1].split("'")[0])
    text = log.read_text()
    assert "tf.Svd" in text and "ConverterError" in text and len(text) > len(message)
    log.unlink()
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_quantization_and_calibration_errors(trained, tmp_path):
    model, x_train, _, _ = trained
    path = tmp_path / "m.tflite"
    with pytest.raises(ConfigError, match=r"unknown quantization 'int4'.*'float16', 'int8'"):
        export(model, path, format="tflite", quantization="int4")
    with pytest.raises(ConfigError, match="TFLite exports only"):
        export(model, tmp_path / "saved", quantization="float16")
    with pytest.raises(DataError, match="needs representative_data"):
        export(model, path, format="tflite", quantization="int8")
    with pytest.raises(DataError, match=r"element 0 has shape \(4, 8, 8, 3\).*16, 16, 3"):
        export(
            model, path, format="tflite", quantization="int8",
            representative_data=np.zeros((4, 8, 8, 3), "uint8"),
        )  # fmt: skip
    with pytest.raises(DataError, match="is not raw 0..255 pixels"):
        export(
            model, path, format="tflite", quantization="int8",
            representative_data=x_train[:4].astype("float32") - 128,
        )  # fmt: skip
    with pytest.raises(DataError, match="holds no images"):
        export(model, path, format="tflite", quantization="int8", representative_data=[])

    def failing():
        yield x_train[:2]
        raise OSError("disk went away")

    with pytest.raises(DataError, match="failed at element 1: OSError: disk went away"):
        export(model, path, format="tflite", quantization="int8", representative_data=failing())
    assert list(tmp_path.iterdir()) == []


def test_cli_export_quantized_tflite(trained, tmp_path, capsys):
    from keras_cnnkit.cli.main import main as run_cli
    from keras_cnnkit.io import save

    model, x_train, _, images = trained
    model_path = tmp_path / "model.keras"
    save(model, model_path, {"class_names": [str(i) for i in range(10)]})
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for i, image in enumerate(x_train[:40]):
        Image.fromarray(image).save(calibration / f"{i:02d}.png")
    out = tmp_path / "int8.tflite"
    args = ["export", str(model_path), str(out), "--format", "tflite", "--quantization", "int8"]
    assert run_cli([*args, "--calibration-data", str(calibration)]) == 0
    assert "int8 quantization" in capsys.readouterr().out
    scores = _tflite_scores(out, images)
    assert _agreement(scores, model.predict(images, verbose=0)) >= AGREEMENT["int8"]
    (calibration / "bad.png").write_bytes(b"not an image")
    out.unlink()
    assert run_cli([*args, "--calibration-data", str(calibration)]) == 2
    assert f"{calibration / 'bad.png'}: not an image file" in capsys.readouterr().err
    assert not out.exists()
    assert run_cli(args) == 2
    assert "needs representative_data" in capsys.readouterr().err


def test_backbone_classifier_trained_in_mixed_bfloat16_exports_to_tflite(tmp_path):
    from keras_cnnkit.backbones import backbone_model, build_classifier

    keras.utils.set_random_seed(5)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_classifier("mobilenetv2", 3, input_shape=(32, 32, 3), weights=None)
    finally:
        keras.config.set_dtype_policy(previous)
    assert backbone_model(model).layers[1].compute_dtype == "bfloat16"
    images = np.random.default_rng(2).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    export(model, tmp_path / "m.tflite", format="tflite")
    scores = _tflite_scores(tmp_path / "m.tflite", images)
    float32 = cast_precision(model, "float32")
    assert compute_dtypes(float32) == {"float32"}  # the nested backbone too
    np.testing.assert_allclose(scores, float32.predict(images, verbose=0), atol=1e-5)
    np.testing.assert_allclose(
        scores, model.predict(images, verbose=0), atol=TOLERANCE["mixed_bfloat16"]
    )
