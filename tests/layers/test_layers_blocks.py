import keras
import numpy as np
import pytest

from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers import (
    NORMALIZATIONS,
    BatchNorm,
    ClassifierHead,
    ConvBlock,
    Normalize,
    ResidualBlock,
    make_normalization,
)
from tests._helpers.checks import check_layer


def test_conv_block(tmp_path):
    check_layer(
        ConvBlock,
        {"filters": 4, "pool": "max", "dropout": 0.1},
        (2, 8, 8, 3),
        (2, 4, 4, 4),
        tmp_path,
    )


def test_conv_block_valid_padding_and_stride(tmp_path):
    check_layer(
        ConvBlock,
        {"filters": 3, "padding": "valid", "strides": 2, "normalization": "none"},
        (2, 9, 9, 1),
        (2, 4, 4, 3),
        tmp_path,
    )


def test_conv_block_uses_fused_batch_norm_and_no_bias():
    block = ConvBlock(4)
    block.build((None, 8, 8, 3))
    assert isinstance(block.norm, BatchNorm)
    assert block.conv.use_bias is False
    assert ConvBlock(4, normalization="none").conv.use_bias is True


@pytest.mark.parametrize("bad", [{"padding": "full"}, {"pool": "min"}, {"normalization": "x"}])
def test_conv_block_rejects_bad_arguments(bad):
    with pytest.raises(SpecError, match=list(bad.values())[0]):
        ConvBlock(4, **bad)


def test_residual_block_identity(tmp_path):
    check_layer(ResidualBlock, {"filters": 4}, (2, 8, 8, 4), (2, 8, 8, 4), tmp_path)


def test_residual_block_projection(tmp_path):
    layer = check_layer(
        ResidualBlock, {"filters": 6, "strides": 2}, (2, 8, 8, 4), (2, 4, 4, 6), tmp_path
    )
    assert layer.projection is not None


def test_residual_block_adds_the_input():
    block = ResidualBlock(2, normalization="none")
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 2)).astype("float32")
    block(x)
    for w in block.weights:  # zero branch -> the block is the identity
        w.assign(np.zeros(w.shape, "float32"))
    np.testing.assert_allclose(np.asarray(block(x)), x, atol=1e-6)


@pytest.mark.parametrize("pooling", ["flatten", "avg", "max", "avgmax"])
def test_classifier_head(tmp_path, pooling):
    layer = check_layer(
        ClassifierHead,
        {"num_classes": 3, "pooling": pooling, "hidden_units": (5,), "dropout": 0.2},
        (2, 4, 4, 6),
        (2, 3),
        tmp_path,
    )
    probs = np.asarray(layer(np.ones((2, 4, 4, 6), "float32")))
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


def test_classifier_head_float32_under_mixed_precision():
    head = ClassifierHead(3, dtype="mixed_bfloat16")
    assert head(np.ones((1, 2, 2, 4), "float32")).dtype == "float32"


def test_normalize(tmp_path):
    check_layer(
        Normalize,
        {"scale": 0.5, "mean": [1.0, 2.0, 3.0], "std": 2.0},
        (2, 4, 4, 3),
        (2, 4, 4, 3),
        tmp_path,
        input_dtype="uint8",
    )


@pytest.mark.parametrize(
    "preset, reference",
    [
        ("caffe", keras.applications.vgg16.preprocess_input),
        ("caffe", keras.applications.resnet50.preprocess_input),
        ("tf", keras.applications.mobilenet_v2.preprocess_input),
        ("torch", keras.applications.densenet.preprocess_input),
    ],
)
def test_normalize_presets_match_keras_applications(preset, reference):
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3)).astype("uint8")
    expected = reference(x.astype("float32").copy())
    got = np.asarray(Normalize.from_preset(preset)(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_normalize_rejects_bad_arguments():
    with pytest.raises(SpecError, match="std"):
        Normalize(std=[1.0, 0.0, 1.0])
    with pytest.raises(SpecError, match="preset"):
        Normalize.from_preset("imagenet")


@pytest.mark.parametrize("kind", NORMALIZATIONS)
def test_every_normalization_builds(kind):
    layer = make_normalization(kind, name="n", channels=8)
    if kind == "none":
        assert layer is None
    else:
        assert tuple(layer(np.ones((2, 3, 3, 8), "float32")).shape) == (2, 3, 3, 8)
