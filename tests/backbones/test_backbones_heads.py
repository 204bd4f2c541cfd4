"""Head swaps, pooled features, freezing in any order and feature_info of any stage choice."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_cnnkit import conv_stack, reset_classifier
from keras_cnnkit._deprecation import KerasCnnkitDeprecationWarning
from keras_cnnkit.backbones import (
    BackboneEntry,
    backbone_entry,
    backbone_model,
    build_classifier,
    feature_extractor,
    feature_info,
    list_backbones,
)
from keras_cnnkit.errors import SpecError
from keras_cnnkit.finetune import freeze, stage_lr_multipliers, unfreeze
from keras_cnnkit.layers import ClassifierHead
from keras_cnnkit.models import cifar10_fast
from tests._helpers.checks import check_keras_roundtrip


def _images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _trainable(model) -> int:
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def _first_per_family() -> list[str]:
    seen: dict[str, str] = {}
    for name in list_backbones():
        seen.setdefault(backbone_entry(name).module, name)
    return sorted(seen.values())


# ----------------------------------------------------------------------------- unfreeze


def test_unfreeze_all_after_last_stages_unfreezes_everything():
    model = build_classifier("resnet50", 3, input_shape=(32, 32, 3), weights=None)
    assert _trainable(model) == 6_147  # the head: 2048 * 3 + 3
    unfreeze(model, last_n_stages=1)
    assert _trainable(model) == 14_982_147
    unfreeze(model)
    assert _trainable(model) == 23_540_739
    unfreeze(model, from_layer="conv5_block1_1_conv")
    assert _trainable(model) == 14_982_147
    unfreeze(model)
    assert _trainable(model) == 23_540_739
    freeze(model)
    assert _trainable(model) == 6_147
    unfreeze(model)
    assert _trainable(model) == 23_540_739


def _check_unfreeze_any_order(model):
    frozen = _trainable(freeze(model))
    full = _trainable(unfreeze(model))
    n = len(backbone_entry(model).stage_layers)
    last = _trainable(unfreeze(model, last_n_stages=1))
    assert frozen < last < full
    assert _trainable(unfreeze(model, last_n_stages=n)) == full
    for step in (lambda: unfreeze(model, last_n_stages=1), lambda: freeze(model)):
        step()
        assert _trainable(unfreeze(model)) == full
    unfreeze(model, last_n_stages=1)
    assert _trainable(freeze(model)) == frozen


@pytest.mark.parametrize("name", ["vgg16", "mobilenetv2"])
def test_unfreeze_in_any_order(name):
    entry = backbone_entry(name)
    side = entry.min_size
    _check_unfreeze_any_order(build_classifier(name, 3, (side, side, 3), weights=None))


# ------------------------------------------------------------------------- feature_info


def _check_feature_info(name, stages, size=None):
    entry = backbone_entry(name)
    side = size or max(entry.min_size, 64)
    model = feature_extractor(name, stages=stages, input_shape=(side, side, 3), weights=None)
    out = model.predict(_images(1, side), verbose=0)
    info = feature_info(model)
    assert [f"stage{f.stage}" for f in info] == sorted(out, key=lambda k: int(k[5:]))
    for f in info:
        fmap = out[f"stage{f.stage}"]
        assert f.layer == entry.stage_layers[f.stage - 1]
        assert f.channels == fmap.shape[-1]
        assert f.reduction == 2 ** round(np.log2(side / fmap.shape[1]))
    return model, info


@pytest.mark.parametrize(
    "stages, expected",
    [
        ((2, -1), [2, 5]),
        (("conv3_block4_out",), [3]),
        ((1, 2), [1, 2]),
        ((4,), [4]),
        (None, [1, 2, 3, 4, 5]),
    ],
)
def test_feature_info_reports_the_chosen_stages(stages, expected, tmp_path):
    model, info = _check_feature_info("resnet50", stages)
    assert [f.stage for f in info] == expected
    model.save(tmp_path / "features.keras")
    loaded = keras.saving.load_model(tmp_path / "features.keras")
    assert feature_info(loaded) == info
    x = _images(1, 64)
    got, expected = loaded.predict(x, verbose=0), model.predict(x, verbose=0)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_feature_extractor_of_early_stages_can_be_unfrozen():
    model = feature_extractor("resnet50", stages=(1, 2), input_shape=(64, 64, 3), weights=None)
    unfreeze(model, last_n_stages=1)
    names = {v.path.split("/")[-2] for v in model.trainable_weights}
    assert "conv2_block3_3_conv" in names and "conv1_conv" not in names
    assert stage_lr_multipliers(model, 0.5)["conv1_conv"] == 0.5


# --------------------------------------------------------------- head swap and features


def test_reset_classifier_of_a_backbone_classifier_keeps_the_backbone(tmp_path):
    keras.utils.set_random_seed(1)
    model = build_classifier("vgg16", 3, input_shape=(32, 32, 3), weights=None, dropout=0.1)
    x = _images()
    before = model.predict(x, verbose=0)
    new = reset_classifier(model, 7)
    assert new.output_shape == (None, 7)
    assert backbone_model(new) is backbone_model(model)
    head = new.get_layer("head")
    assert isinstance(head, ClassifierHead) and head.dropout == 0.1 and head.pooling == "avg"
    # Same features: the new head on the old model's features gives the new model's output.
    features = backbone_model(model)(model.get_layer("preprocess")(x), training=False)
    np.testing.assert_allclose(new.predict(x, verbose=0), np.asarray(head(features)), atol=1e-5)
    np.testing.assert_array_equal(model.predict(x, verbose=0), before)  # the old model is intact
    # Still frozen as before; the new head trains; and it round-trips.
    assert len(new.trainable_weights) == 2
    check_keras_roundtrip(new, x, tmp_path)


def test_reset_classifier_of_library_models():
    x = _images(2)
    for model in (
        conv_stack({"stages": [4, 8]}, input_shape=(32, 32, 3), num_classes=10),
        cifar10_fast(width=0.125),
    ):
        new = reset_classifier(model, 2, pooling="avgmax", output_activation=None)
        assert new.output_shape == (None, 2)
        assert new.get_layer("head").pooling == "avgmax"
        for layer in model.layers[:-1]:
            assert new.get_layer(layer.name) is layer
        logits = new.predict(x, verbose=0)
        assert not np.allclose(logits.sum(-1), 1.0)  # logits, not probabilities


def test_reset_classifier_of_a_trained_model_loaded_from_keras(tmp_path):
    x = _images(8, 16)
    model = conv_stack({"stages": [4, 8]}, input_shape=(16, 16, 3), num_classes=3)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, np.arange(8) % 3, epochs=2, verbose=0)
    model.save(tmp_path / "trained.keras")
    loaded = keras.saving.load_model(tmp_path / "trained.keras")
    new = reset_classifier(loaded, 5, dropout=0.2)
    assert new.output_shape == (None, 5) and new.get_layer("head").dropout == 0.2
    trunk = keras.Model(new.inputs, new.get_layer("stage2_conv1").output)
    original = keras.Model(model.inputs, model.get_layer("stage2_conv1").output)
    np.testing.assert_allclose(trunk.predict(x, verbose=0), original.predict(x, verbose=0))
    check_keras_roundtrip(new, x, tmp_path)


@pytest.mark.parametrize("builder", ["build_classifier", "conv_stack", "reset"])
def test_num_classes_zero_gives_pooled_features(builder, tmp_path):
    x = _images(2)
    if builder == "build_classifier":
        model = build_classifier("vgg16", 0, input_shape=(32, 32, 3), weights=None)
        width = 512
        trunk = keras.Model(model.inputs, model.get_layer(model.layers[-2].name).output)
    else:
        base = conv_stack({"stages": [4, 8]}, input_shape=(32, 32, 3), num_classes=3)
        model = conv_stack({"stages": [4, 8]}, input_shape=(32, 32, 3), num_classes=0)
        if builder == "reset":
            model = reset_classifier(base, 0)
        width = 8
        trunk = keras.Model(model.inputs, model.get_layer("stage2_conv1").output)
    assert model.output_shape == (None, width)
    got = model.predict(x, verbose=0)
    expected = np.asarray(trunk.predict(x, verbose=0)).mean(axis=(1, 2))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert got.dtype == np.float32
    check_keras_roundtrip(model, x, tmp_path)


def test_pooled_features_in_mixed_precision_are_float32():
    model = conv_stack(
        {"stages": [4], "head": {"pooling": "avgmax", "hidden_units": [6]}},
        input_shape=(16, 16, 3),
        num_classes=0,
        dtype="mixed_bfloat16",
    )
    assert model.output_shape == (None, 6)
    assert model(_images(2, 16)).dtype == "float32"


def test_reset_classifier_errors():
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="plain")
    with pytest.raises(SpecError, match="model 'plain' has no ClassifierHead"):
        reset_classifier(plain, 3)
    model = conv_stack({"stages": [4]}, input_shape=(16, 16, 3), num_classes=2)
    with pytest.raises(SpecError, match="num_classes must be >= 0"):
        reset_classifier(model, -1)
    with pytest.raises(SpecError, match=r"pooling must be one of \['flatten', 'avg'"):
        reset_classifier(model, 3, pooling="mean")
    with pytest.raises(SpecError, match=r"output_activation must be one of \['softmax', 'sigmoid'"):
        build_classifier("vgg16", 2, (32, 32, 3), weights=None, output_activation="relu")
    with pytest.raises(SpecError, match="num_classes must be >= 0"):
        conv_stack({"stages": [4]}, input_shape=(16, 16, 3), num_classes=-2)


# ------------------------------------------------------------------------------ names


def test_entry_and_model_lookups_and_the_old_names():
    from keras_cnnkit.backbones import find_backbone, get_backbone

    model = build_classifier("vgg16", 2, input_shape=(32, 32, 3), weights=None)
    entry = backbone_entry("VGG-16")
    assert isinstance(entry, BackboneEntry) and entry.name == "vgg16"
    assert backbone_entry(model) is entry and backbone_entry(entry) is entry
    assert backbone_model(model).name == "vgg16"
    with pytest.warns(KerasCnnkitDeprecationWarning, match="use .*backbone_entry instead"):
        assert get_backbone("vgg16") is entry
    with pytest.warns(KerasCnnkitDeprecationWarning, match="use .*backbone_model instead"):
        assert find_backbone(model) is backbone_model(model)


# --------------------------------------------------------------- every family (slow run)


@pytest.mark.slow
@pytest.mark.parametrize("name", _first_per_family())
def test_every_family_unfreezes_in_any_order(name):
    side = backbone_entry(name).min_size
    _check_unfreeze_any_order(build_classifier(name, 3, (side, side, 3), weights=None))


@pytest.mark.slow
@pytest.mark.parametrize("name", _first_per_family())
def test_every_family_reports_feature_info_of_any_stage_choice(name):
    n = backbone_entry(name).num_stages
    for stages in (None, (1,), (2, -1), (n - 1,), (backbone_entry(name).stage_layers[1],)):
        _check_feature_info(name, stages)
