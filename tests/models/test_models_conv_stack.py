import dataclasses

import keras
import numpy as np
import pytest

from keras_cnnkit import ConvStackSpec, HeadSpec, StageSpec, conv_stack
from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers import BatchNorm
from keras_cnnkit.models import CLASSIC_SPEC, cifar10_classic, cifar10_fast, validate_spec
from tests._helpers.checks import check_keras_roundtrip

SMALL = {
    "stages": [{"filters": 4, "convs": 2}, {"filters": 8, "residual": 1}],
    "head": {"pooling": "avg"},
}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(16, 16), (24, 20)])
def test_shapes_for_any_size_and_channels(channels, size):
    model = conv_stack(SMALL, input_shape=(*size, channels), num_classes=5)
    x = np.zeros((2, *size, channels), "uint8")
    assert model(x).shape == (2, 5)
    assert model.input.dtype == "uint8"


def test_global_pooling_accepts_unknown_size():
    model = conv_stack(SMALL, input_shape=(None, None, 3), num_classes=2)
    for size in (8, 17, 40):
        assert model(np.zeros((1, size, size, 3), "uint8")).shape == (1, 2)


def test_layer_names_and_structure():
    model = conv_stack(SMALL, input_shape=(16, 16, 3))
    names = [layer.name for layer in model.layers]
    assert names == [
        "images",
        "normalize",
        "stage1_conv1",
        "stage1_conv2",
        "stage2_conv1",
        "stage2_res1",
        "head",
    ]
    assert model.get_layer("stage1_conv1").pool is None
    assert model.get_layer("stage1_conv2").pool == "max"


def test_spec_round_trips_through_plain_data():
    spec = ConvStackSpec.from_dict(SMALL)
    assert ConvStackSpec.from_dict(spec.to_dict()) == spec


def test_stage_overrides_normalization():
    spec = dataclasses.replace(
        CLASSIC_SPEC,
        normalization="batch",
        stages=(StageSpec(4, normalization="none"), StageSpec(8)),
    )
    model = conv_stack(spec, input_shape=(8, 8, 3))
    assert model.get_layer("stage1_conv1").norm is None
    assert isinstance(model.get_layer("stage2_conv1").norm, BatchNorm)


def test_too_many_poolings_names_the_stage():
    with pytest.raises(SpecError, match=r"stage 4 \(filters=8\).*cannot pool a 1x1"):
        conv_stack({"stages": [8, 8, 8, 8, 8]}, input_shape=(8, 8, 3))


def test_valid_convolution_too_small_names_the_stage():
    spec = {"stages": [{"filters": 4, "padding": "valid", "kernel_size": 5, "pool": None}] * 2}
    with pytest.raises(SpecError, match="stage 2"):
        conv_stack(spec, input_shape=(7, 7, 1))


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"stages": []}, "at least one stage"),
        (
            {"stages": [{"filters": 4, "kernal_size": 3}]},
            r"stage 1: unknown keys \['kernal_size'\]",
        ),
        ({"stages": [4], "head": {"pooling": "sum"}}, "pooling"),
        ({"stages": [{"filters": 4, "dropout": 1.5}]}, "stage 1.*dropout"),
        ({"stages": [4], "normalization": "batchy"}, "batchy"),
        (
            {"stages": [{"filters": 4, "convs": 2, "padding": ["same"]}]},
            "1 paddings given for 2 convs",
        ),
        ({"stages": [4], "preprocessing": "imagenet"}, "preprocessing"),
    ],
)
def test_bad_specs_get_clear_errors(spec, match):
    with pytest.raises(SpecError, match=match):
        conv_stack(spec, input_shape=(16, 16, 3))


def test_flatten_head_needs_fixed_size():
    with pytest.raises(SpecError, match="flatten"):
        conv_stack({"stages": [4], "head": {"pooling": "flatten"}}, input_shape=(None, None, 3))


def test_validate_spec_reports_sizes():
    spec = ConvStackSpec(
        stages=(StageSpec(4, convs=2, padding=("same", "valid")), StageSpec(8, pool=None))
    )
    assert validate_spec(spec, (32, 32, 3)) == [(15, 15), (15, 15)]


def test_round_trip_identical_predictions(tmp_path):
    model = conv_stack(SMALL, input_shape=(16, 16, 3), num_classes=3)
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3)).astype("uint8")
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    check_keras_roundtrip(model, x, tmp_path)


def test_classic_network_matches_the_keras_example():
    model = cifar10_classic()
    assert model.count_params() == 1_250_858
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Normalize",
        "ConvBlock",
        "ConvBlock",
        "ConvBlock",
        "ConvBlock",
        "ClassifierHead",
    ]
    assert model.get_layer("head").hidden_units == (512,)


def test_fast_network():
    model = cifar10_fast()
    assert model.count_params() == 2_443_210
    layers = list(model._flatten_layers())
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(isinstance(n, BatchNorm) for n in norms)
    keras_bn = cifar10_fast(normalization="keras_batch")
    assert not any(isinstance(layer, BatchNorm) for layer in keras_bn._flatten_layers())
    assert keras_bn.count_params() == model.count_params()


def test_mixed_precision_model_outputs_and_reloads_float32(tmp_path):
    model = conv_stack(SMALL, input_shape=(16, 16, 3), num_classes=3, dtype="mixed_bfloat16")
    assert model.get_layer("stage1_conv1").compute_dtype == "bfloat16"
    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype("uint8")
    assert model.predict(x, verbose=0).dtype == np.float32
    loaded = check_keras_roundtrip(model, x, tmp_path)
    assert loaded.output.dtype == "float32"


def test_head_spec_hidden_units_and_logit_scale():
    spec = ConvStackSpec(
        stages=(StageSpec(4),),
        head=HeadSpec(pooling="max", hidden_units=(6,), logit_scale=0.5, output_activation=None),
    )
    model = conv_stack(spec, input_shape=(8, 8, 3), num_classes=2)
    head = model.get_layer("head")
    assert head.logit_scale == 0.5 and head.out_act is None


def test_cast_precision_carries_weights(tmp_path):
    from keras_cnnkit.models import cast_precision

    model = conv_stack(SMALL, input_shape=(16, 16, 3), num_classes=3, dtype="mixed_bfloat16")
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3)).astype("uint8")
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    model.save(tmp_path / "bf16.keras")
    loaded = keras.saving.load_model(tmp_path / "bf16.keras")
    fp32 = cast_precision(loaded, "float32")
    assert {layer.compute_dtype for layer in fp32.layers[1:]} == {"float32"}
    for a, b in zip(fp32.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    expected = model.predict(x, verbose=0)
    got = fp32.predict(x, verbose=0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=0.05)
    back = cast_precision(fp32, "mixed_bfloat16")
    assert back.get_layer("stage1_conv1").compute_dtype == "bfloat16"


def test_norm_momentum_reaches_every_batch_norm():
    model = cifar10_fast(width=0.125)
    norms = [
        layer
        for layer in model._flatten_layers()
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 8 and {n.momentum for n in norms} == {0.9}
    spec = ConvStackSpec.from_dict({"stages": [4], "norm_momentum": 0.5})
    block = conv_stack(spec, input_shape=(8, 8, 3)).get_layer("stage1_conv1")
    assert block.norm.momentum == 0.5 and block.get_config()["norm_momentum"] == 0.5


@pytest.mark.parametrize(
    "spec, match",
    [
        ({"stages": [{"filters": "32"}]}, r"stage 1.*'filters' must be an integer, got '32'"),
        ({"stages": [{"filters": 8, "convs": 1.5}]}, r"stage 1.*'convs' must be an integer"),
        ({"stages": [{"filters": True}]}, r"stage 1.*'filters' must be an integer, got True"),
        ({"stages": [{"filters": 8, "dropout": "0.1"}]}, r"stage 1.*'dropout' must be a number"),
        ({"stages": [8], "stem_filters": "16"}, r"network.*'stem_filters' must be an integer"),
        ({"stages": [8], "norm_momentum": None}, r"network.*'norm_momentum' must be a number"),
        ({"stages": [8], "activation": 3}, r"network.*'activation' must be a string.*got 3"),
        ({"stages": [8], "head": {"hidden_units": ["8"]}}, r"head.*'hidden_units' must be"),
        ({"stages": [8], "head": {"logit_scale": "x"}}, r"head.*'logit_scale' must be a number"),
    ],
)
def test_wrong_value_types_name_the_key(spec, match):
    with pytest.raises(SpecError, match=match):
        conv_stack(spec, input_shape=(16, 16, 3))


@pytest.mark.parametrize(
    "spec, choices",
    [
        ({"stages": [4], "normalization": "batchnorm"}, r"normalization 'batchnorm'.*'batch'"),
        ({"stages": [{"filters": 4, "pool": "sum"}]}, r"pool must be one of .*'max'.*'avg'"),
        ({"stages": [{"filters": 4, "padding": "full"}]}, r"padding must be one of .*'same'"),
        ({"stages": [4], "head": {"pooling": "sum"}}, r"pooling must be one of .*'avgmax'"),
        ({"stages": [4], "preprocessing": "imagenet"}, r"expected one of \[.*'unit'"),
        (
            {"stages": [4], "head": {"output_activation": "softmaxx"}},
            r"output_activation must be one of \['softmax', 'sigmoid', None\], got 'softmaxx'",
        ),
    ],
)
def test_option_errors_list_the_valid_choices(spec, choices):
    with pytest.raises(SpecError, match=choices):
        conv_stack(spec, input_shape=(16, 16, 3))
