import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnnkit.layers import BatchNorm
from tests._helpers.checks import check_layer

X = np.random.default_rng(0).normal(2.0, 3.0, (4, 6, 6, 5)).astype("float32")
TOL = {"float32": 1e-5, "mixed_bfloat16": 2e-2}


def _pair(dtype, **kwargs):
    ours = BatchNorm(momentum=0.9, dtype=dtype, **kwargs)
    ref = keras.layers.BatchNormalization(momentum=0.9, dtype=dtype, **kwargs)
    ours.build(X.shape)
    ref.build(X.shape)
    rng = np.random.default_rng(1)
    weights = [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    ours.set_weights(weights)
    return ours, ref


@pytest.mark.tensorflow("the fused kernel, compared with tf.GradientTape")
@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("training", [True, False])
def test_matches_keras_batch_normalization(dtype, training):
    ours, ref = _pair(dtype)
    x = tf.constant(X)
    weights = tf.constant(np.random.default_rng(2).normal(size=X.shape).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y_ours = ours(x, training=training)
        y_ref = ref(x, training=training)
        loss_ours = tf.reduce_sum(tf.cast(y_ours, tf.float32) * weights)
        loss_ref = tf.reduce_sum(tf.cast(y_ref, tf.float32) * weights)
    tol = TOL[dtype]
    assert y_ours.dtype == y_ref.dtype
    np.testing.assert_allclose(np.float32(y_ours), np.float32(y_ref), rtol=tol, atol=tol)
    for a, b in [
        (tape.gradient(loss_ours, x), tape.gradient(loss_ref, x)),
        (tape.gradient(loss_ours, ours.gamma.value), tape.gradient(loss_ref, ref.gamma.value)),
        (tape.gradient(loss_ours, ours.beta.value), tape.gradient(loss_ref, ref.beta.value)),
    ]:
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(a, b, rtol=tol, atol=10 * tol * np.abs(b).max())
    for a, b in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    if training:  # the statistics moved, and by the same amount
        assert not np.allclose(ours.moving_mean.numpy(), _pair(dtype)[0].moving_mean.numpy())


def test_moving_statistics_follow_keras_momentum():
    layer = BatchNorm(momentum=0.5)
    layer(X, training=True)
    batch_mean = X.mean(axis=(0, 1, 2))
    batch_var = X.var(axis=(0, 1, 2))  # biased, as Keras keeps it
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * batch_mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.5 + 0.5 * batch_var, rtol=1e-5)


@pytest.mark.tensorflow("checks the fused kernel's tf.bfloat16 output")
def test_float32_statistics_under_mixed_precision():
    layer = BatchNorm(dtype="mixed_bfloat16")
    y = layer(X, training=True)
    assert y.dtype == tf.bfloat16
    for w in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance):
        assert w.dtype == "float32"


def test_trainable_false_is_inference_mode():
    layer = BatchNorm()
    layer.build(X.shape)
    layer.trainable = False
    before = [w.copy() for w in layer.get_weights()]
    y = layer(X, training=True)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    expected = (X - 0.0) / np.sqrt(1.0 + layer.epsilon)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-5)


def test_weights_move_between_keras_and_cnnkit_layers():
    ref = keras.layers.BatchNormalization()
    ref(X, training=True)
    ours = BatchNorm()
    ours.build(X.shape)
    ours.set_weights(ref.get_weights())
    assert [w.name for w in ours.weights] == [w.name for w in ref.weights]
    np.testing.assert_allclose(np.asarray(ours(X)), np.asarray(ref(X)), rtol=1e-5, atol=1e-5)
    back = keras.layers.BatchNormalization()
    back.build(X.shape)
    back.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(back(X)), np.asarray(ours(X)), rtol=1e-5, atol=1e-5)


def test_round_trip(tmp_path):
    check_layer(BatchNorm, {"momentum": 0.9}, (2, 4, 4, 3), (2, 4, 4, 3), tmp_path)


def test_other_ranks_fall_back_to_keras():
    layer = BatchNorm()
    y = layer(np.ones((3, 4), "float32") * np.arange(3, dtype="float32")[:, None], training=True)
    assert tuple(y.shape) == (3, 4)
    np.testing.assert_allclose(np.asarray(y).mean(axis=0), 0.0, atol=1e-5)


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from keras_cnnkit.layers import BatchNorm

    # The two replicas see very different halves of each batch.
    x = np.concatenate([np.zeros((8, 4, 4, 2)), np.full((8, 4, 4, 2), 10.0)]).astype("float32")
    y = np.zeros((16, 4, 4, 2), "float32")

    def run(strategy):
        with strategy.scope():
            inputs = keras.Input((4, 4, 2))
            bn = BatchNorm(momentum=0.0, name="bn")
            model = keras.Model(inputs, bn(inputs))
            model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        return model.get_layer("bn").moving_mean.numpy().tolist()

    mode = sys.argv[1]
    if mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.get_strategy()
    print(json.dumps(run(strategy)))
    """
)


@pytest.mark.tensorflow("tf.distribute.MirroredStrategy")
def test_mirrored_strategy_synchronizes_statistics(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = {}
    for mode in ("mirrored", "single"):
        proc = subprocess.run(
            [sys.executable, str(script), mode],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[mode] = np.array(eval(proc.stdout.strip().splitlines()[-1]))
    # momentum 0: the moving mean is the last batch mean; synchronized -> global mean 5.0,
    # per-replica (drifting) statistics would give 0.0 or 10.0.
    np.testing.assert_allclose(out["single"], 5.0, rtol=1e-5)
    np.testing.assert_allclose(out["mirrored"], out["single"], rtol=1e-5)
