import json
import zipfile

import keras
import numpy as np
import pytest
from _io_helpers import build_tiny_model

import keras_cnnkit
from keras_cnnkit.errors import DataError, IntegrityError, StorageError
from keras_cnnkit.io import ModelMetadata, load, load_weights, save, save_weights
from keras_cnnkit.io.metadata import sidecar_path


def _flip_byte(path, offset=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


def test_save_load_roundtrip_with_metadata(tiny_model, images, tmp_path):
    path = tmp_path / "model.keras"
    meta = save(
        tiny_model,
        path,
        {"class_names": ["cat", "dog", "bird"], "training": {"epochs": 3}, "dataset": "toy"},
    )
    assert path.is_file() and sidecar_path(path).is_file()
    assert _leftovers(tmp_path) == []

    model, loaded_meta = load(path)
    np.testing.assert_array_equal(
        model.predict(images, verbose=0), tiny_model.predict(images, verbose=0)
    )
    assert loaded_meta == meta
    assert loaded_meta.class_names == ["cat", "dog", "bird"]
    assert loaded_meta.training == {"epochs": 3}
    assert loaded_meta.extra == {"dataset": "toy"}
    assert loaded_meta.input_spec == [
        {"name": "images", "shape": [None, 16, 16, 3], "dtype": "uint8"}
    ]
    assert loaded_meta.output_spec[0]["shape"] == [None, 3]
    assert loaded_meta.preprocessing[0]["type"] == "Normalize"
    assert loaded_meta.preprocessing[0]["scale"] == pytest.approx(1 / 255)
    assert loaded_meta.versions["keras_cnnkit"] == keras_cnnkit.__version__
    assert loaded_meta.versions["keras"] == keras.__version__
    assert loaded_meta.versions["backend"] == keras.backend.backend()
    assert keras.backend.backend() in loaded_meta.versions  # the backend library's version
    import hashlib

    assert loaded_meta.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded_meta.size == path.stat().st_size

    # The file is a plain .keras archive (Keras loads it) that also carries the metadata.
    plain = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        plain.predict(images, verbose=0), tiny_model.predict(images, verbose=0)
    )
    with zipfile.ZipFile(path) as archive:
        inside = json.loads(archive.read("keras_cnnkit.json"))
    assert inside["class_names"] == ["cat", "dog", "bird"]


def test_layers_resolve_without_custom_objects(tiny_model, tmp_path):
    save(tiny_model, tmp_path / "m.keras")
    model, _ = load(tmp_path / "m.keras")
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"Normalize", "ConvBlock", "ClassifierHead"} <= kinds


def test_no_overwrite_unless_asked(tiny_model, tmp_path):
    path = tmp_path / "model.keras"
    first = save(tiny_model, path)
    before = path.read_bytes()
    with pytest.raises(StorageError, match="already exists.*overwrite=True"):
        save(build_tiny_model("other"), path)
    assert path.read_bytes() == before
    save(build_tiny_model("other"), path, overwrite=True)
    model, meta = load(path)
    assert model.name == "other"
    assert meta.sha256 != first.sha256  # the metadata describes the new file
    assert _leftovers(tmp_path) == []


@keras.saving.register_keras_serializable(package="tests_io")
class _Unsavable(keras.layers.Layer):
    def call(self, x):
        return x

    def get_config(self):
        raise NotImplementedError("this layer cannot be serialized")


def test_failed_save_keeps_the_old_file(tiny_model, tmp_path):
    path = tmp_path / "model.keras"
    save(tiny_model, path)
    before = path.read_bytes()
    side_before = sidecar_path(path).read_bytes()
    inputs = keras.Input((4,))
    broken = keras.Model(inputs, _Unsavable()(inputs))
    with pytest.raises(StorageError, match="cannot save model"):
        save(broken, path, overwrite=True)
    assert path.read_bytes() == before
    assert sidecar_path(path).read_bytes() == side_before
    assert _leftovers(tmp_path) == []
    load(path)  # still loads and verifies


def test_corrupted_file_is_detected(tiny_model, tmp_path):
    path = tmp_path / "model.keras"
    save(tiny_model, path)
    _flip_byte(path)
    with pytest.raises(IntegrityError, match="sha256"):
        load(path)


def test_missing_metadata_needs_verify_false(tiny_model, images, tmp_path):
    path = tmp_path / "plain.keras"
    tiny_model.save(path)
    with pytest.raises(StorageError, match="verify=False"):
        load(path)
    model, meta = load(path, verify=False)
    assert meta is None
    np.testing.assert_array_equal(
        model.predict(images, verbose=0), tiny_model.predict(images, verbose=0)
    )


def test_unsafe_lambda_refused_unless_opted_out(tiny_model, tmp_path):
    inputs = keras.Input((16, 16, 3), dtype="uint8")
    outputs = keras.layers.Lambda(lambda t: t * 2.0)(tiny_model(inputs))
    unsafe = keras.Model(inputs, outputs)
    path = tmp_path / "unsafe.keras"
    save(unsafe, path)
    with pytest.raises(StorageError, match="safe_mode=False"):
        load(path)
    model, _ = load(path, safe_mode=False)
    assert any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


def test_bad_metadata_and_paths(tiny_model, tmp_path):
    with pytest.raises(DataError, match="class_names.*2 names.*3 scores"):
        save(tiny_model, tmp_path / "m.keras", {"class_names": ["a", "b"]})
    with pytest.raises(DataError, match="training.*JSON"):
        save(tiny_model, tmp_path / "m.keras", {"training": {"when": object()}})
    with pytest.raises(StorageError, match=r"must end with '\.keras'"):
        save(tiny_model, tmp_path / "m.h5")
    with pytest.raises(StorageError, match="does not exist"):
        load(tmp_path / "nothing.keras")
    assert not list(tmp_path.iterdir())


def test_metadata_dataclass_roundtrip(tmp_path):
    meta = ModelMetadata(class_names=["a"], training={"lr": 0.1}, sha256="00")
    meta.write(tmp_path / "m.json")
    assert ModelMetadata.read(tmp_path / "m.json") == meta
    (tmp_path / "bad.json").write_text('{"hello": 1}')
    with pytest.raises(StorageError, match="not a keras_cnnkit model metadata"):
        ModelMetadata.read(tmp_path / "bad.json")


def test_weights_roundtrip_and_checks(tiny_model, images, tmp_path):
    path = tmp_path / "ckpt.weights.h5"
    meta = save_weights(tiny_model, path, {"training": {"epoch": 7}})
    assert meta.format == "weights"
    fresh = build_tiny_model()
    assert not np.array_equal(
        fresh.predict(images, verbose=0), tiny_model.predict(images, verbose=0)
    )
    got = load_weights(fresh, path)
    assert got.training == {"epoch": 7}
    np.testing.assert_array_equal(
        fresh.predict(images, verbose=0), tiny_model.predict(images, verbose=0)
    )

    inputs = keras.Input((16, 16, 3), dtype="uint8")
    other = keras.Model(
        inputs,
        keras_cnnkit.layers.ClassifierHead(5)(
            keras_cnnkit.layers.ConvBlock(8)(keras.layers.Rescaling(1 / 255)(inputs))
        ),
    )
    with pytest.raises(StorageError, match="cannot load weights"):
        load_weights(other, path)

    _flip_byte(path)
    with pytest.raises(IntegrityError, match="sha256"):
        load_weights(fresh, path)
    with pytest.raises(StorageError, match=r"\.weights\.h5"):
        save_weights(tiny_model, tmp_path / "x.h5")
