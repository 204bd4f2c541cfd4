"""Fine-tuning: freezing, BatchNorm kept in inference mode, discriminative learning rates."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_cnnkit.backbones import InferenceMode, backbone_model, build_classifier
from keras_cnnkit.errors import SpecError
from keras_cnnkit.finetune import (
    batchnorm_layers,
    fine_tune,
    freeze,
    lr_multiplier_class,
    stage_lr_multipliers,
    unfreeze,
    with_lr_multipliers,
)
from tests._helpers.checks import check_layer


def _data(n=8, size=32, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return x, np.arange(n) % classes


def _bn_state(model):
    return [
        (bn.moving_mean.numpy().copy(), bn.moving_variance.numpy().copy())
        for bn in batchnorm_layers(model)
    ]


def _assert_same_bn(before, after):
    assert len(before) == len(after) > 0
    for (m0, v0), (m1, v1) in zip(before, after):
        np.testing.assert_array_equal(m0, m1)
        np.testing.assert_array_equal(v0, v1)


@pytest.mark.xfail(
    keras.backend.backend() == "jax",
    reason="this random-init ResNet50's head, trained at 10x base_lr, saturates its softmax "
    "to exact 0/1 probabilities; on JAX Keras takes the cross-entropy of clipped "
    "probabilities (TensorFlow uses the logits), so phase 2 gets exactly zero gradients",
    strict=False,
)
def test_fine_tune_resnet50_keeps_batchnorm_statistics():
    model = build_classifier("resnet50", 3, input_shape=(32, 32, 3), weights=None)
    x, y = _data()
    bn_before = _bn_state(model)
    conv = backbone_model(model).get_layer("conv5_block3_3_conv")
    kernel_before = conv.kernel.numpy().copy()
    histories = fine_tune(
        model, (x, y), (x[:4], y[:4]), head_epochs=1, epochs=1, base_lr=1e-3, batch_size=4,
        compile_kwargs={"run_eagerly": True},
    )  # fmt: skip
    assert len(histories.head.history["loss"]) == 1
    assert len(histories.full.history["val_loss"]) == 1
    assert histories.full.epoch == [1]
    assert type(model.optimizer).__name__ == "AdamWithLRMultipliers"
    assert not np.array_equal(conv.kernel.numpy(), kernel_before)  # the backbone trained
    _assert_same_bn(bn_before, _bn_state(model))


def test_train_batchnorm_opt_in_updates_statistics():
    """The control: without InferenceMode, fit moves the BatchNorm statistics."""
    model = build_classifier(
        "mobilenetv2", 3, input_shape=(32, 32, 3), weights=None, train_batchnorm=True,
        freeze_backbone=False, backbone_kwargs={"alpha": 0.35},
    )  # fmt: skip
    assert not any(isinstance(la, InferenceMode) for la in model.layers)
    x, y = _data(4)
    before = _bn_state(model)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", run_eagerly=True)
    model.fit(x, y, epochs=1, verbose=0)
    after = _bn_state(model)
    assert not all(np.array_equal(m0, m1) for (m0, _), (m1, _) in zip(before, after))


def _kernels(model):
    return {
        la.name: la.kernel.numpy().copy()
        for la in backbone_model(model).layers
        if isinstance(la, keras.layers.Conv2D)
    } | {"head": model.get_layer("head").logits.kernel.numpy().copy()}


def _head_kernel(model):
    return model.get_layer("head").logits.kernel


def test_discriminative_learning_rates_scale_each_stage(tmp_path):
    model = build_classifier("vgg16", 3, input_shape=(32, 32, 3), weights=None)
    unfreeze(model)
    mults = stage_lr_multipliers(model, 0.01)
    assert mults["block1_conv1"] == pytest.approx(0.01)
    assert mults["block5_conv3"] == pytest.approx(0.01 ** (1 / 5))
    assert "head" not in mults and "block1_pool" not in mults
    lr = 1e-3
    model.compile(
        optimizer=with_lr_multipliers(keras.optimizers.Adam(lr), mults),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,
    )
    x, y = _data()
    before = _kernels(model)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # one Adam step: |update| ~ lr * factor
    after = _kernels(model)
    for name, w0 in before.items():
        step = np.abs(after[name] - w0)
        expected = lr * mults.get(name, 1.0)
        assert step.max() <= expected * 1.001, name
        assert np.median(step[step > 0]) > expected * 0.5, name
    # Lower stages move less.
    moves = [np.abs(after[n] - before[n]).mean() for n in ("block1_conv1", "block3_conv1")]
    moves += [np.abs(after[n] - before[n]).mean() for n in ("block5_conv1", "head")]
    assert moves == sorted(moves) and moves[0] < 0.05 * moves[-1]

    # The optimizer survives save/load and keeps scaling.
    path = tmp_path / "lr.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.optimizer).__name__ == "AdamWithLRMultipliers"
    assert loaded.optimizer.lr_multipliers == pytest.approx(mults)
    loaded.run_eagerly = True
    before = _kernels(loaded)
    loaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = _kernels(loaded)
    low = np.abs(after["block1_conv1"] - before["block1_conv1"]).mean()
    high = np.abs(after["head"] - before["head"]).mean()
    assert low < 0.05 * high


def test_lr_multiplier_classes_and_errors():
    cls = lr_multiplier_class(keras.optimizers.SGD)
    assert cls.__name__ == "SGDWithLRMultipliers"
    assert keras.saving.get_registered_name(cls) == "keras_cnnkit>SGDWithLRMultipliers"
    assert lr_multiplier_class(cls) is cls
    opt = with_lr_multipliers(keras.optimizers.SGD(0.5, momentum=0.9), {"a": 0.1})
    assert isinstance(opt, keras.optimizers.SGD)
    assert opt.get_config()["momentum"] == 0.9 and opt.get_config()["lr_multipliers"] == {"a": 0.1}
    again = with_lr_multipliers(opt, {"b": 0.2})
    assert type(again) is cls and again.lr_multipliers == {"b": 0.2}
    with pytest.raises(SpecError, match="negative"):
        with_lr_multipliers("adam", {"a": -1})
    with pytest.raises(SpecError, match="Optimizer subclass"):
        lr_multiplier_class(int)


def test_freeze_unfreeze_errors():
    model = build_classifier("vgg16", 2, input_shape=(32, 32, 3), weights=None)
    with pytest.raises(SpecError, match="not both"):
        unfreeze(model, 1, from_layer="block5_conv1")
    with pytest.raises(SpecError, match=r"last_n_stages must be an integer in 1..5"):
        unfreeze(model, last_n_stages=6)
    with pytest.raises(SpecError, match="'block9_conv1' is not a layer of backbone 'vgg16'"):
        unfreeze(model, from_layer="block9_conv1")
    with pytest.raises(SpecError, match="lr_mult must be in"):
        stage_lr_multipliers(model, 2.0)
    with pytest.raises(SpecError, match="5 non-negative factors"):
        stage_lr_multipliers(model, [0.1, 0.2])
    assert stage_lr_multipliers(model, [0, 0, 0, 0, 1])["block5_conv1"] == 1.0
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(SpecError, match="exactly one registered backbone"):
        freeze(plain)
    with pytest.raises(SpecError, match="epochs must be >= 0"):
        fine_tune(model, _data(2), head_epochs=-1)
    x, y = _data(2, classes=2)
    head_only = fine_tune(
        model, (x, y), head_epochs=1, epochs=0, batch_size=2, compile_kwargs={"run_eagerly": True}
    )
    assert head_only.full is None and len(head_only.head.history["loss"]) == 1
    assert type(model.optimizer).__name__ == "Adam"


def test_fine_tune_last_stages_only_and_graph_mode():
    model = build_classifier("vgg16", 3, input_shape=(32, 32, 3), weights=None, dropout=0.1)
    x, y = _data()
    early = backbone_model(model).get_layer("block1_conv1").kernel.numpy().copy()
    late = backbone_model(model).get_layer("block5_conv1").kernel.numpy().copy()
    histories = fine_tune(
        model, (x, y), head_epochs=1, epochs=1, last_n_stages=1, lr_mult=0.1, batch_size=4
    )
    assert histories.full.epoch == [1]
    assert type(model.optimizer).__name__ == "AdamWithLRMultipliers"
    np.testing.assert_array_equal(
        backbone_model(model).get_layer("block1_conv1").kernel.numpy(), early
    )
    assert not np.array_equal(backbone_model(model).get_layer("block5_conv1").kernel.numpy(), late)


def test_inference_mode_layer(tmp_path):
    check_layer(
        InferenceMode,
        {"layer": keras.layers.BatchNormalization()},
        input_shape=(2, 8, 8, 3),
        expected_output_shape=(2, 8, 8, 3),
        tmp_path=tmp_path,
    )
    wrapped = InferenceMode(keras.layers.BatchNormalization(momentum=0.0))
    model = keras.Sequential([keras.Input((3,)), wrapped])
    model.compile(optimizer="sgd", loss="mse")
    x = np.full((4, 3), 5.0, "float32")
    model.fit(x, x, epochs=1, verbose=0)
    np.testing.assert_array_equal(wrapped.layer.moving_mean.numpy(), np.zeros(3))
