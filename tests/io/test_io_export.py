import io
import json
import pathlib
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from _io_helpers import build_tiny_model
from PIL import Image

from keras_cnnkit.errors import SpecError, StorageError
from keras_cnnkit.io import export
from keras_cnnkit.layers import ClassifierHead, ConvBlock, Normalize

pytestmark = pytest.mark.tensorflow("SavedModel export")

CLASSES = ["cat", "dog", "bird"]


def _encode(array, fmt, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(7)
    model = build_tiny_model()
    path = tmp_path_factory.mktemp("export") / "serving" / "1"
    path.parent.mkdir()
    export(model, path, metadata={"class_names": CLASSES})
    return model, path


def test_savedmodel_raw_uint8_signature(exported, images):
    import tensorflow as tf

    model, path = exported
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {"serving_default", "serving_bytes"}
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(out["scores"].numpy(), expected, rtol=1e-5, atol=1e-6)
    best = expected.argmax(-1)
    np.testing.assert_array_equal(out["class_index"].numpy(), best)
    assert [s.decode() for s in out["class_name"].numpy()] == [CLASSES[i] for i in best]


def test_savedmodel_encoded_bytes_signature(exported, images, tmp_path):
    import tensorflow as tf

    model, path = exported
    # Real image files, read back as bytes: lossless PNG at the model size, and a JPEG
    # of another size that the signature must resize.
    png_files = []
    for i, image in enumerate(images[:2]):
        png_files.append(tmp_path / f"img{i}.png")
        png_files[-1].write_bytes(_encode(image, "PNG"))
    jpg = tmp_path / "big.jpg"
    big = np.random.default_rng(1).integers(0, 256, size=(24, 20, 3), dtype=np.uint8)
    jpg.write_bytes(_encode(big, "JPEG", quality=95))

    fn = tf.saved_model.load(str(path)).signatures["serving_bytes"]
    out = fn(image_bytes=tf.constant([p.read_bytes() for p in png_files]))
    decoded = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in png_files])
    np.testing.assert_allclose(
        out["scores"].numpy(), model.predict(decoded, verbose=0), rtol=1e-5, atol=1e-6
    )

    out = fn(image_bytes=tf.constant([jpg.read_bytes()]))
    scores = out["scores"].numpy()
    assert scores.shape == (1, 3)
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)
    resized = np.asarray(Image.open(jpg).convert("RGB").resize((16, 16), Image.BILINEAR))
    np.testing.assert_allclose(scores, model.predict(resized[None], verbose=0), atol=0.05)


def test_savedmodel_metadata_and_cli(exported):
    _, path = exported
    meta = json.loads((path / "assets.extra" / "keras_cnnkit.json").read_text())
    assert meta["class_names"] == CLASSES and meta["format"] == "savedmodel"

    cli = pathlib.Path(sys.executable).with_name("saved_model_cli")
    if not cli.exists():
        found = shutil.which("saved_model_cli")
        if found is None:
            pytest.skip("saved_model_cli is not installed")
        cli = pathlib.Path(found)
    proc = subprocess.run(
        [str(cli), "show", "--all", "--dir", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    default = text.split("signature_def['serving_default']")[1].split("signature_def[")[0]
    assert "inputs['images']" in default and "dtype: DT_UINT8" in default
    assert "shape: (-1, 16, 16, 3)" in default
    assert "outputs['scores']" in default and "outputs['class_name']" in default
    raw = text.split("signature_def['serving_bytes']")[1].split("signature_def[")[0]
    assert "inputs['image_bytes']" in raw and "dtype: DT_STRING" in raw


def test_export_refuses_existing_then_replaces(tiny_model, tmp_path):
    path = tmp_path / "exp"
    export(tiny_model, path)
    with pytest.raises(StorageError, match="already exists"):
        export(tiny_model, path)
    stamp = (path / "saved_model.pb").stat().st_mtime_ns
    export(tiny_model, path, overwrite=True)
    assert (path / "saved_model.pb").stat().st_mtime_ns != stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_export_bad_inputs(tmp_path):
    with pytest.raises(StorageError, match="unknown export format 'onnx'"):
        export(build_tiny_model(), tmp_path / "x", format="onnx")
    inputs = keras.Input((None, None, 3), dtype="uint8")
    x = ConvBlock(4)(Normalize.from_preset("unit")(inputs))
    any_size = keras.Model(inputs, ClassifierHead(2)(x))
    with pytest.raises(SpecError, match="image_size"):
        export(any_size, tmp_path / "a")
    export(any_size, tmp_path / "a", image_size=(8, 8))
    a, b = keras.Input((4, 4, 3)), keras.Input((4, 4, 3))
    two = keras.Model([a, b], keras.layers.Add()([a, b]))
    with pytest.raises(SpecError, match="one image input"):
        export(two, tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_export_tflite(tiny_model, images, tmp_path):
    import tensorflow as tf

    path = tmp_path / "model.tflite"
    meta = export(tiny_model, path, format="tflite")
    assert meta.sha256 and meta.size == path.stat().st_size
    interpreter = tf.lite.Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner("serving_default")
    out = runner(images=images)
    np.testing.assert_allclose(
        out["scores"], tiny_model.predict(images, verbose=0), rtol=1e-4, atol=1e-5
    )
    with pytest.raises(StorageError, match=r"\.tflite"):
        export(tiny_model, tmp_path / "model.bin", format="tflite")
