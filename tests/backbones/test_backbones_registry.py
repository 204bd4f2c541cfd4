"""Registry: names, wildcards, errors, and preprocessing presets against keras.applications."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_cnnkit.backbones import BackboneEntry, backbone_entry, list_backbones, register_backbone
from keras_cnnkit.errors import CnnkitError, SpecError
from keras_cnnkit.layers import Normalize

EXPECTED_FAMILIES = [
    "vgg16", "vgg19", "resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2",
    "resnet152v2", "inception_v3", "inception_resnet_v2", "xception", "mobilenet",
    "mobilenetv2", "mobilenetv3small", "mobilenetv3large", "densenet121", "densenet169",
    "densenet201", "nasnetmobile", "nasnetlarge", "convnext_tiny", "convnext_xlarge",
    "efficientnetb0", "efficientnetb7", "efficientnetv2b0", "efficientnetv2l",
]  # fmt: skip


def test_every_keras_applications_cnn_is_registered():
    names = list_backbones()
    for name in EXPECTED_FAMILIES:
        assert name in names
    constructors = {backbone_entry(n).constructor for n in names}
    public = {n for n in dir(keras.applications) if n[0].isupper()}
    assert public <= constructors, sorted(public - constructors)
    for name in names:
        assert callable(backbone_entry(name).constructor_fn())


def test_wildcards():
    assert list_backbones("resnet*") == [
        "resnet101", "resnet101v2", "resnet152", "resnet152v2", "resnet50", "resnet50v2",
    ]  # fmt: skip
    assert list_backbones("EfficientNetB?") == [f"efficientnetb{i}" for i in range(8)]
    assert list_backbones("*v2?") == ["efficientnetv2l", "efficientnetv2m", "efficientnetv2s"]
    assert list_backbones("alexnet*") == []
    assert list_backbones("vgg1[6]") == ["vgg16"]


def test_lookup_ignores_case_and_separators():
    assert backbone_entry("ResNet50").name == "resnet50"
    assert backbone_entry("ConvNeXtTiny").name == "convnext_tiny"
    assert backbone_entry("inception-v3").name == "inception_v3"
    entry = backbone_entry("vgg16")
    assert backbone_entry(entry) is entry


def test_unknown_name_lists_close_matches():
    with pytest.raises(SpecError, match="unknown backbone 'resnet05'.*'resnet50'"):
        backbone_entry("resnet05")
    with pytest.raises(CnnkitError, match="efficientnetb0"):
        backbone_entry("efficentnetb0")
    with pytest.raises(SpecError, match="must be a name"):
        backbone_entry(50)


def test_register_rejects_duplicates_and_bad_entries():
    entry = backbone_entry("vgg16")
    with pytest.raises(SpecError, match="already registered"):
        register_backbone(entry)
    with pytest.raises(SpecError, match="unknown preprocessing 'bgr'"):
        BackboneEntry("x", "VGG16", "vgg16", "bgr", 224, 32, ("block1_conv2",))
    with pytest.raises(SpecError, match="min_size"):
        BackboneEntry("x", "VGG16", "vgg16", "caffe", 224, 300, ("block1_conv2",))


EXPECTED_PRESETS = {
    "vgg16": "caffe", "resnet50": "caffe", "resnet152": "caffe", "resnet50v2": "tf",
    "inception_v3": "tf", "xception": "tf", "mobilenetv2": "tf", "densenet121": "torch",
    "efficientnetb0": "raw", "convnext_tiny": "raw", "mobilenetv3small": "raw",
    "nasnetmobile": "tf", "efficientnetv2s": "raw",
}  # fmt: skip


@pytest.mark.parametrize("name", list_backbones())
def test_preprocessing_matches_keras_applications(name):
    entry = backbone_entry(name)
    if name in EXPECTED_PRESETS:
        assert entry.preprocessing == EXPECTED_PRESETS[name]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    expected = entry.preprocess_input_fn()(x.astype("float32"))
    got = Normalize.from_preset(entry.preprocessing)(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6, atol=2e-5)
