"""Classifiers and feature extractors on registered backbones (weights=None or local files)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_cnnkit.backbones import (
    InferenceMode,
    backbone_entry,
    backbone_model,
    build_classifier,
    feature_extractor,
    feature_info,
    find_stage_ends,
    list_backbones,
    save_backbone_weights,
)
from keras_cnnkit.errors import SpecError, StorageError
from keras_cnnkit.finetune import freeze, unfreeze
from tests._helpers.checks import check_keras_roundtrip

# Built in the default run; every other family only in the slow run (``-m slow``).
DEFAULT_RUN = ("vgg16", "resnet50", "mobilenetv2")
KAPPS = {"vgg16": keras.applications.vgg16, "resnet50": keras.applications.resnet}
# Trainable weight tensors: (frozen, unfrozen, last stage only) for 3 classes.
# VGG16: 13 convs (kernel, bias); ResNet50: 53 convs (kernel, bias) + 53 BN (gamma, beta);
# the head adds its Dense kernel and bias.
TRAINABLE = {"vgg16": (2, 2 + 26, 2 + 6), "resnet50": (2, 2 + 212, 2 + 40)}


def _param(name):
    marks = () if name in DEFAULT_RUN else (pytest.mark.slow,)
    return pytest.param(name, marks=marks, id=name)


def _images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module", params=["vgg16", "resnet50"])
def classifier(request):
    return request.param, build_classifier(request.param, 3, input_shape=(32, 32, 3), weights=None)


def test_classifier_structure_and_trainable_counts(classifier):
    name, model = classifier
    assert model.output_shape == (None, 3)
    assert model.inputs[0].dtype == "uint8"
    assert [la.name for la in model.layers] == [
        "images", "preprocess", f"{name}_inference", "head",
    ]  # fmt: skip
    assert isinstance(model.get_layer(f"{name}_inference"), InferenceMode)
    assert backbone_model(model).name == name
    frozen, full, last = TRAINABLE[name]
    assert len(model.trainable_weights) == frozen
    assert len(unfreeze(model).trainable_weights) == full
    assert len(unfreeze(model, last_n_stages=1).trainable_weights) == last
    assert len(freeze(model).trainable_weights) == frozen
    probs = model.predict(_images(), verbose=0)
    assert probs.shape == (4, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_preprocessing_inside_the_model_is_keras_applications(classifier):
    name, model = classifier
    x = _images()
    expected = KAPPS[name].preprocess_input(x.astype("float32"))
    got = model.get_layer("preprocess")(x)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6, atol=1e-4)
    # The uint8 model equals backbone(preprocess_input(x)) followed by the head.
    features = backbone_model(model)(expected, training=False)
    manual = model.get_layer("head")(features)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(manual), atol=1e-5)


def test_keras_roundtrip_keeps_outputs_backbone_and_flags(classifier, tmp_path):
    name, model = classifier
    unfreeze(model, last_n_stages=2)
    loaded = check_keras_roundtrip(model, _images(), tmp_path)
    assert backbone_model(loaded).name == name
    assert isinstance(loaded.get_layer(f"{name}_inference"), InferenceMode)
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    # Training the loaded model leaves the BatchNorm statistics of its backbone alone.
    bns = [
        la
        for la in backbone_model(loaded).layers
        if isinstance(la, keras.layers.BatchNormalization)
    ]
    before = [bn.moving_mean.numpy().copy() for bn in bns]
    loaded.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    loaded.fit(_images(), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    for bn, mean in zip(bns, before):
        np.testing.assert_array_equal(bn.moving_mean.numpy(), mean)
    freeze(model)


def test_weights_files_reproduce_the_source(classifier, tmp_path):
    name, source = classifier
    # A whole-classifier file: identical outputs.
    path = tmp_path / "classifier.weights.h5"
    source.save_weights(path)
    target = build_classifier(name, 3, input_shape=(32, 32, 3), weights=path)
    x = _images(seed=3)
    np.testing.assert_array_equal(target.predict(x, verbose=0), source.predict(x, verbose=0))
    if name != "vgg16":
        return  # the backbone-only path is the same code for every family
    # A backbone-only file: the backbone of a new 5-class classifier equals the source's.
    path = save_backbone_weights(source, tmp_path / f"{name}.weights.h5")
    target = build_classifier(name, 5, input_shape=(32, 32, 3), weights=path)
    assert target.output_shape == (None, 5)
    assert len(target.trainable_weights) == 2  # frozen by default
    z = np.random.default_rng(1).uniform(-100, 100, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(
        backbone_model(target).predict(z, verbose=0), backbone_model(source).predict(z, verbose=0)
    )


def test_mismatching_weights_file_names_file_and_backbone(tmp_path):
    source = build_classifier("vgg16", 2, input_shape=(32, 32, 3), weights=None)
    path = save_backbone_weights(source, tmp_path / "vgg16_backbone.weights.h5")
    with pytest.raises(StorageError, match="vgg16_backbone.weights.h5.*'vgg19'"):
        build_classifier("vgg19", 2, input_shape=(32, 32, 3), weights=path)
    path = tmp_path / "vgg16_classifier.weights.h5"
    source.save_weights(path)
    with pytest.raises(StorageError, match="vgg16_classifier.weights.h5.*'vgg16'.*4 classes"):
        build_classifier("vgg16", 4, input_shape=(32, 32, 3), weights=path)
    with pytest.raises(StorageError, match="does not exist"):
        build_classifier("vgg16", 2, input_shape=(32, 32, 3), weights=tmp_path / "no.weights.h5")
    with pytest.raises(StorageError, match="must end in .weights.h5 or .h5"):
        build_classifier("vgg16", 2, input_shape=(32, 32, 3), weights=tmp_path / "w.ckpt")
    with pytest.raises(SpecError, match="weights must be 'imagenet', None or the path"):
        build_classifier("vgg16", 2, input_shape=(32, 32, 3), weights=42)


def test_legacy_h5_backbone_file(tmp_path):
    legacy = pytest.importorskip("keras.src.legacy.saving.legacy_h5_format")
    import h5py

    backbone = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_notop.h5"
    with h5py.File(path, "w") as f:
        legacy.save_weights_to_hdf5_group(f, backbone)
    model = build_classifier("vgg16", 2, input_shape=(32, 32, 3), weights=str(path))
    z = np.random.default_rng(2).uniform(-100, 100, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(
        backbone_model(model).predict(z, verbose=0), backbone.predict(z, verbose=0)
    )


def test_minimum_size_errors_name_the_minimum():
    with pytest.raises(SpecError, match="'resnet50' needs inputs of at least 32x32.*31, 31"):
        build_classifier("resnet50", 2, input_shape=(31, 31, 3), weights=None)
    with pytest.raises(SpecError, match="'inception_v3' needs inputs of at least 75x75"):
        build_classifier("inception_v3", 2, input_shape=(64, 64, 3), weights=None)
    with pytest.raises(SpecError, match="'xception' needs inputs of at least 71x71"):
        feature_extractor("xception", input_shape=(96, 96, 3), image_size=(64, 64), weights=None)
    with pytest.raises(SpecError, match="input_shape must be"):
        build_classifier("vgg16", 2, input_shape=(32, 32), weights=None)
    with pytest.raises(SpecError, match="image_size must be"):
        build_classifier("vgg16", 2, input_shape=(32, 32, 3), image_size=(32,), weights=None)
    with pytest.raises(SpecError, match="head pooling"):
        build_classifier("vgg16", 2, input_shape=(32, 32, 3), pooling="mean", weights=None)


def test_resizing_inside_the_model_accepts_any_size(tmp_path):
    model = build_classifier(
        "vgg16", 2, input_shape=(None, None, 3), image_size=(32, 32), weights=None,
        pooling="avgmax", hidden_units=(8,), dropout=0.2,
    )  # fmt: skip
    assert model.get_layer("resize").get_config()["height"] == 32
    for size in (40, 57):
        assert model.predict(_images(2, size), verbose=0).shape == (2, 2)
    check_keras_roundtrip(model, _images(2, 48), tmp_path)


def test_feature_extractor_resnet50():
    model = feature_extractor("resnet50", input_shape=(64, 64, 3), weights=None)
    out = model.predict(_images(2, 64), verbose=0)
    assert sorted(out) == [f"stage{k}" for k in range(1, 6)]
    shapes = {k: v.shape[1:] for k, v in out.items()}
    assert shapes == {
        "stage1": (32, 32, 64), "stage2": (16, 16, 256), "stage3": (8, 8, 512),
        "stage4": (4, 4, 1024), "stage5": (2, 2, 2048),
    }  # fmt: skip
    info = feature_info(model)
    assert [(f.reduction, f.channels) for f in info] == [
        (2, 64), (4, 256), (8, 512), (16, 1024), (32, 2048),
    ]  # fmt: skip
    # The maps are the backbone's own layer outputs on keras.applications preprocessing.
    backbone = backbone_model(model)
    x = _images(2, 64)
    tap = keras.Model(backbone.inputs[0], backbone.get_layer("conv4_block6_out").output)
    expected = tap(keras.applications.resnet.preprocess_input(x.astype("float32")))
    np.testing.assert_allclose(
        model.predict(x, verbose=0)["stage4"], np.asarray(expected), rtol=1e-4, atol=1e-4
    )
    with pytest.raises(SpecError, match="stage 6 out of range.*1..5"):
        feature_extractor("resnet50", stages=(6,), input_shape=(64, 64, 3), weights=None)
    with pytest.raises(SpecError, match="'conv9' is not a stage layer"):
        feature_extractor("resnet50", stages=("conv9",), input_shape=(64, 64, 3), weights=None)


def test_feature_extractor_stage_selection_and_roundtrip(tmp_path):
    model = feature_extractor(
        "vgg16", stages=("block3_conv3", -1), input_shape=(32, 32, 3), weights=None
    )
    x = _images(2, 32)
    out = model.predict(x, verbose=0)
    assert {k: v.shape for k, v in out.items()} == {
        "stage3": (2, 8, 8, 256), "stage5": (2, 2, 2, 512),
    }  # fmt: skip
    model.save(tmp_path / "features.keras")
    loaded = keras.saving.load_model(tmp_path / "features.keras")
    got = loaded.predict(x, verbose=0)
    for key in out:
        np.testing.assert_array_equal(got[key], out[key])


@pytest.mark.parametrize("name", [_param(n) for n in list_backbones()])
def test_every_backbone_builds_a_small_classifier(name):
    entry = backbone_entry(name)
    side = entry.min_size
    model = build_classifier(name, 3, input_shape=(side, side, 3), weights=None)
    assert backbone_entry(backbone_model(model).name) is entry
    assert model.predict(_images(1, side), verbose=0).shape == (1, 3)
    with pytest.raises(SpecError, match=f"at least {side}x{side}"):
        build_classifier(name, 3, input_shape=(side - 1, side, 3), weights=None)


@pytest.mark.parametrize("name", [_param(n) for n in list_backbones()])
def test_stage_layers_are_computed_stage_ends(name):
    """The typed stage layers exist and are where the graph itself says stages end."""
    entry = backbone_entry(name)
    size = entry.default_size
    backbone = entry.constructor_fn()(
        include_top=False,
        weights=None,
        input_shape=(size, size, 3),
        name=entry.keras_name,
        **entry.kwargs,
    )
    names = {la.name for la in backbone.layers}
    assert set(entry.stage_layers) <= names
    ends = find_stage_ends(backbone)
    info = feature_info(backbone)
    reductions = [f.reduction for f in info]
    assert reductions == sorted(set(reductions)), reductions
    for f in info:
        assert ends[f.reduction] == f.layer, (f, ends)
    assert len(info) >= 2 and reductions[-1] >= 16  # the last stage is deep
