"""The airbench-style CIFAR-10 recipe: whitening, weight averaging, batches, TTA, compute."""

import keras
import numpy as np
import pytest

from keras_cnnkit.errors import DataError, SpecError
from keras_cnnkit.layers import _tta
from keras_cnnkit.layers._initializers import PartialIdentity
from keras_cnnkit.layers._whitening import PatchWhitening, patch_whitening_kernel
from keras_cnnkit.models._flops import forward_flops
from keras_cnnkit.models.cifar10 import cifar10_airbench
from keras_cnnkit.training._averaging import LookaheadAverage
from keras_cnnkit.training._batches import FlipShiftBatches
from keras_cnnkit.training._schedules import PiecewiseLinear
from keras_cnnkit.training.cifar10 import AirbenchRecipe, cifar10_airbench_recipe


def _correlated_images(n=64, size=12, seed=0):
    """Smooth, colour-correlated images: neighbouring pixels and channels covary."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, size + 1, size + 1, 1))
    smooth = (base[:, 1:, 1:] + base[:, :-1, 1:] + base[:, 1:, :-1] + base[:, :-1, :-1]) / 4
    colour = smooth * np.array([1.0, 0.8, 0.6]) + 0.1 * rng.normal(size=(n, size, size, 3))
    return colour.astype("float32")


def _patches(images, k=2):
    windows = np.lib.stride_tricks.sliding_window_view(images, (k, k), axis=(1, 2))
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * images.shape[-1])


def test_whitening_kernel_whitens_the_patches():
    images = _correlated_images()
    raw = _patches(images)
    raw_cov = raw.T @ raw / len(raw)
    # the test images are far from white: strongly correlated patch components
    std = np.sqrt(np.diag(raw_cov))
    assert np.max(np.abs(raw_cov / np.outer(std, std) - np.eye(12))) > 0.5

    layer = PatchWhitening(2, epsilon=1e-6)
    layer.adapt(images)
    out = keras.ops.convert_to_numpy(layer(images)).reshape(-1, 24)[:, :12]
    cov = out.T @ out / len(out)
    np.testing.assert_allclose(cov, np.eye(12), atol=2e-3)
    # the second half is the first negated
    second = keras.ops.convert_to_numpy(layer(images)).reshape(-1, 24)[:, 12:]
    np.testing.assert_allclose(second, -out, atol=1e-5)


def test_whitening_kernel_matches_the_eigendecomposition():
    images = _correlated_images(16, 6, seed=1)
    kernel = patch_whitening_kernel(images, 2, epsilon=5e-4)
    patches = _patches(images).astype(np.float64)
    cov = patches.T @ patches / len(patches)
    eigenvalues = np.linalg.eigvalsh(cov)[::-1]
    filters = kernel.reshape(12, 24)[:, :12]
    # each filter has norm 1/sqrt(lambda + eps), largest eigenvalue first
    np.testing.assert_allclose(
        np.linalg.norm(filters, axis=0), 1 / np.sqrt(eigenvalues + 5e-4), rtol=1e-4
    )


def test_whitening_rejects_images_that_are_not_images():
    with pytest.raises(DataError, match="at least 2x2"):
        patch_whitening_kernel(np.zeros((3, 1, 5, 3)), 2)
    with pytest.raises(DataError, match="shape"):
        patch_whitening_kernel(np.zeros((32, 32, 3)), 2)


def test_partial_identity_passes_the_first_channels_through():
    kernel = keras.ops.convert_to_numpy(PartialIdentity(seed=1)((3, 3, 4, 6)))
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype("float32")
    y = keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, padding="same"))
    np.testing.assert_allclose(y[..., :4], x, atol=1e-6)
    assert np.std(kernel[..., 4:]) > 0.01  # the other filters are random


def _small_airbench(**kwargs):
    return cifar10_airbench(widths=(8, 16, 16), input_shape=(16, 16, 3), **kwargs)


def _images(n, size=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype("uint8")


def test_tta_model_averages_the_six_views_by_hand():
    model = _small_airbench(tta_level=2)
    x = _images(5)
    classifier = model.get_layer("tta").layer
    classifier.get_layer("whiten").adapt(_images(8, seed=2).astype("float32") / 255.0)
    xf = x.astype("float32")

    def logp(images):
        return np.log(keras.ops.convert_to_numpy(classifier(images, training=False)))

    pad = np.pad(xf, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    views = [xf, pad[:, :16, :16], pad[:, 2:18, 2:18]]
    weights = [0.5, 0.25, 0.25]
    total = sum(w * 0.5 * (logp(v) + logp(v[:, :, ::-1])) for w, v in zip(weights, views))
    expected = np.exp(total) / np.exp(total).sum(-1, keepdims=True)
    got = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    # in training the classifier sees the images alone
    train_out = keras.ops.convert_to_numpy(model(x, training=True))
    classifier_out = keras.ops.convert_to_numpy(classifier(xf, training=True))
    np.testing.assert_allclose(train_out, classifier_out, rtol=1e-4, atol=1e-6)
    assert not np.allclose(got, keras.ops.convert_to_numpy(classifier(xf, training=False)))


def test_tta_rejects_an_unknown_level():
    with pytest.raises(SpecError, match="level"):
        _tta.TestTimeAugmentation(keras.layers.Dense(2), level=3)


def test_saved_model_keeps_whitening_and_tta(tmp_path):
    model = _small_airbench(tta_level=2)
    whiten = model.get_layer("tta").layer.get_layer("whiten")
    whiten.adapt(_images(8).astype("float32") / 255.0)
    x = _images(6, seed=3)
    path = tmp_path / "airbench.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("tta"), _tta.TestTimeAugmentation)
    assert loaded.get_layer("tta").level == 2
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(loaded.predict(x, verbose=0)),
        keras.ops.convert_to_numpy(model.predict(x, verbose=0)),
    )
    kernel = loaded.get_layer("tta").layer.get_layer("whiten").conv.kernel
    assert not kernel.trainable
    np.testing.assert_array_equal(kernel.numpy(), whiten.conv.kernel.numpy())


def test_lookahead_average_matches_a_hand_computation():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs))
    w0 = [v.numpy().copy() for v in model.weights]
    callback = LookaheadAverage(total_steps=20, every=5, decay=0.9, power=2.0)
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    rng = np.random.default_rng(0)
    average = [w.copy() for w in w0]
    for step in range(1, 11):
        new = [rng.normal(size=w.shape).astype("float32") for w in w0]
        model.set_weights(new)
        callback.on_train_batch_end(step - 1)
        if step % 5 == 0:
            d = 0.9**5 * (step / 20) ** 2
            average = [d * a + (1 - d) * n for a, n in zip(average, new)]
            for got, want in zip(model.get_weights(), average):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        else:  # between updates the weights run free
            for got, want in zip(model.get_weights(), new):
                np.testing.assert_array_equal(got, want)
    model.set_weights([w + 1 for w in average])
    callback.on_train_end()  # the run ends on the average
    for got, want in zip(model.get_weights(), average):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert LookaheadAverage.from_config(callback.get_config()).get_config() == callback.get_config()


def test_lookahead_rejects_bad_arguments():
    with pytest.raises(SpecError, match="every"):
        LookaheadAverage(total_steps=10, every=0)


def test_flip_shift_batches_alternate_flips_each_epoch():
    x = np.arange(6 * 4 * 5, dtype="uint8").reshape(6, 4, 5, 1)  # rows differ left-right
    batches = FlipShiftBatches(x, np.arange(6), batch_size=6, flip=True, seed=3)

    def flipped(images):
        return np.array([not np.array_equal(a, b) for a, b in zip(images, x)])

    first = flipped(batches[0][0])
    for a, b, f in zip(batches[0][0], x, first):
        np.testing.assert_array_equal(a, b[:, ::-1] if f else b)
    batches.on_epoch_end()
    second = flipped(batches[0][0])
    np.testing.assert_array_equal(second, ~first)
    assert 0 < first.sum() < 6


def test_flip_shift_batches_shift_with_reflected_borders():
    x = np.random.default_rng(0).integers(0, 256, (20, 6, 6, 3)).astype("uint8")
    batches = FlipShiftBatches(x, np.zeros(20), batch_size=7, translate=2, shuffle=True, seed=1)
    assert len(batches) == 3
    seen = []
    for i in range(len(batches)):
        images, labels = batches[i]
        assert images.dtype == np.uint8 and labels.dtype == np.int32
        seen.append(images)
    images = np.concatenate(seen)
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    moved = 0
    for image, index, (dy, dx) in zip(images, batches.order, batches.shifts[batches.order]):
        np.testing.assert_array_equal(image, padded[index, 2 + dy : 8 + dy, 2 + dx : 8 + dx])
        moved += (dy, dx) != (0, 0)
    assert moved > 10
    with pytest.raises(DataError, match="differ in length"):
        FlipShiftBatches(x, np.zeros(3), batch_size=4)


def test_piecewise_linear_schedule():
    schedule = PiecewiseLinear([0, 10, 100], [0.2, 1.0, 0.07])
    values = [float(schedule(s)) for s in (0, 5, 10, 55, 100, 200)]
    np.testing.assert_allclose(values, [0.2, 0.6, 1.0, 0.535, 0.07, 0.07], rtol=1e-6)
    again = PiecewiseLinear.from_config(schedule.get_config())
    assert float(again(55)) == pytest.approx(0.535)
    with pytest.raises(SpecError, match="increase"):
        PiecewiseLinear([0, 0], [1, 1])


def test_forward_flops_of_the_airbench_network():
    # conv MACs x 2: whitening, three blocks of two convs, the classifier
    expected = 2 * (
        31 * 31 * 2 * 2 * 3 * 24
        + 31 * 31 * 9 * 24 * 64
        + 15 * 15 * 9 * 64 * 64
        + 15 * 15 * 9 * 64 * 256
        + 7 * 7 * 9 * 256 * 256 * 2
        + 3 * 3 * 9 * 256 * 256
        + 256 * 10
    )
    assert forward_flops(cifar10_airbench()) == expected


def test_recipe_config_resolves():
    recipe = cifar10_airbench_recipe(precision="float32", batch_size=512)
    assert isinstance(recipe, AirbenchRecipe)
    assert (recipe.epochs, recipe.batch_size, recipe.label_smoothing) == (10, 512, 0.2)
    # airbench's units: 11.5 per 1024 examples over (1 + 1 / (1 - 0.85))
    schedule = recipe.make_schedule(100)
    peak = 11.5 * 512 / (1024 * (1 + 1 / 0.15))
    assert float(schedule(23)) == pytest.approx(peak, rel=1e-6)
    assert float(schedule(0)) == pytest.approx(0.2 * peak, rel=1e-6)
    optimizer = recipe.make_optimizer(schedule)
    assert optimizer.lr_multipliers == {
        f"block{b}_norm{c}": 64.0 for b in (1, 2, 3) for c in (1, 2)
    }
    assert optimizer.weight_decay == pytest.approx(0.0153 / (0.15 * 11.5))
    # 10 epochs of 50,000 images: 3 x forward FLOPs x images x epochs
    assert recipe.training_flops(50_000) == 3 * forward_flops(recipe.model) * 50_000 * 10
    assert recipe.training_flops(50_000) / 1e15 < 0.36


def test_recipe_trains_a_few_steps(tmp_path):
    recipe = cifar10_airbench_recipe(
        epochs=2, batch_size=16, precision="float32", tta_level=1, seed=1
    )
    x = _images(48, size=32, seed=4)
    y = np.random.default_rng(4).integers(0, 10, 48)
    whiten = recipe.model.get_layer("tta").layer.get_layer("whiten")
    assert not np.any(whiten.conv.kernel.numpy())
    before = [w.copy() for w in recipe.model.get_weights()]
    history = recipe.fit(x, y, validation_data=(x[:16], y[:16]), verbose=0)
    assert len(history.history["loss"]) == 2 and "val_accuracy" in history.history
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.any(whiten.conv.kernel.numpy())  # fitted to the training images
    changed = [not np.allclose(a, b) for a, b in zip(before, recipe.model.get_weights())]
    assert sum(changed) > len(changed) // 2
    probs = recipe.predict(x[:8])
    assert probs.shape == (8, 10)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    path = tmp_path / "trained.keras"
    recipe.model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(x[:8], verbose=0), recipe.model.predict(x[:8], verbose=0)
    )


def test_trained_model_loads_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    recipe = cifar10_airbench_recipe(epochs=1, batch_size=16, precision="float32")
    x = _images(32, size=32, seed=5)
    recipe.fit(x, np.arange(32) % 10, verbose=0)
    path = tmp_path / "model.keras"
    recipe.model.save(path)
    np.save(tmp_path / "x.npy", x[:4])
    expected = recipe.model.predict(x[:4], verbose=0)
    code = (
        "import sys, numpy as np, keras, keras_cnnkit\n"
        "m = keras.saving.load_model(sys.argv[1])\n"
        "assert type(m.optimizer).__name__ == 'SGDWithLRMultipliers', type(m.optimizer)\n"
        "np.save(sys.argv[2], m.predict(np.load(sys.argv[3]), verbose=0))\n"
    )
    out = tmp_path / "pred.npy"
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(out), str(tmp_path / "x.npy")],
        check=True,
        capture_output=True,
    )
    np.testing.assert_array_equal(np.load(out), expected)


def test_cnnkit_evaluate_applies_the_test_time_augmentation(tmp_path, capsys):
    import json

    from _training_helpers import run_cli

    keras.utils.set_random_seed(0)
    recipe = cifar10_airbench_recipe(epochs=1, batch_size=16, precision="float32")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (48, 32, 32, 3)).astype("uint8")
    y = rng.integers(0, 10, 48)
    recipe.fit(x, y, verbose=0)
    with_tta = float(np.mean(recipe.model.predict(x, verbose=0).argmax(-1) == y))
    classifier = recipe.model.get_layer("tta").layer
    without = float(np.mean(classifier.predict(x.astype("float32"), verbose=0).argmax(-1) == y))
    assert with_tta != without  # the two readings can be told apart on these images
    recipe.model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    capsys.readouterr()
    code = run_cli(
        [
            "evaluate",
            str(tmp_path / "model.keras"),
            str(tmp_path / "data.npz"),
            "--no-verify",
            "--json",
        ]
    )
    assert code == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["accuracy"] == pytest.approx(with_tta)


def test_recipe_fits_the_whitening_to_a_dataset_too():
    recipe = cifar10_airbench_recipe(epochs=1, batch_size=16, precision="float32")
    x = _images(40, size=32, seed=6)
    batches = FlipShiftBatches(x, np.arange(40) % 10, batch_size=16)
    recipe.whitening_images = 20
    recipe.fit(batches, num_examples=40, verbose=0)
    whiten = recipe.model.get_layer("tta").layer.get_layer("whiten")
    normalize = recipe.model.get_layer("tta").layer.get_layer("normalize")
    expected = patch_whitening_kernel(
        keras.ops.convert_to_numpy(normalize(x[:20].astype("float32")))
    )
    np.testing.assert_allclose(whiten.conv.kernel.numpy(), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(DataError, match="empty"):
        recipe.fit([], num_examples=1, verbose=0)
    with pytest.raises(DataError, match="n > 0"):
        FlipShiftBatches(x[:0], np.zeros(0), batch_size=4)


_AVERAGED_SGD = """
import json, sys
import numpy as np, keras
from keras_cnnkit.training._averaging import LookaheadAverage

rng = np.random.default_rng(0)
x = rng.normal(size=(8, 3)).astype("float32")
y = rng.normal(size=(8, 1)).astype("float32")
inputs = keras.Input((3,))
model = keras.Model(inputs, keras.layers.Dense(1, kernel_initializer="ones")(inputs))
model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
callback = LookaheadAverage(total_steps=6, every=2, decay=0.8, power=1.0)
model.fit(x, y, batch_size=8, epochs=6, shuffle=False, verbose=0, callbacks=[callback])
print(json.dumps([w.tolist() for w in model.get_weights()]))
"""


def _averaged_sgd_by_hand():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    w, b = np.ones((3, 1)), np.zeros(1)
    avg_w, avg_b = w.copy(), b.copy()
    for step in range(1, 7):
        r = x @ w + b - y
        w, b = w - 0.1 * 2 * x.T @ r / 8, b - 0.1 * 2 * r.sum(0) / 8
        if step % 2 == 0:
            d = 0.8**2 * (step / 6)
            avg_w, avg_b = d * avg_w + (1 - d) * w, d * avg_b + (1 - d) * b
            w, b = avg_w.copy(), avg_b.copy()
    return [avg_w, avg_b]


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_lookahead_average_inside_fit_matches_sgd_by_hand(backend):
    import json
    import os
    import subprocess
    import sys

    if backend == "jax":
        pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND=backend)
    proc = subprocess.run(
        [sys.executable, "-c", _AVERAGED_SGD], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for g, want in zip(got, _averaged_sgd_by_hand()):
        np.testing.assert_allclose(np.array(g), want, rtol=1e-4, atol=1e-5)


def test_flip_shift_batches_random_flips_are_drawn_again_each_epoch():
    x = np.arange(64 * 4 * 5, dtype="uint8").reshape(64, 4, 5, 1)
    batches = FlipShiftBatches(x, np.arange(64), batch_size=64, flip=True, alternate=False)
    first = batches._flipped.copy()
    batches.on_epoch_end()
    # not the complement (alternating) and not the same draw
    assert not np.array_equal(batches._flipped, ~first)
    assert not np.array_equal(batches._flipped, first)
    recipe = cifar10_airbench_recipe(precision="float32", alternating_flips=False)
    assert recipe.training_data((x, np.arange(64))).alternate is False


def test_whitening_is_fitted_to_a_sample_spread_over_class_sorted_arrays():
    # Arrays sorted by class (a sorted .npz): the first images are one class only.
    recipe = cifar10_airbench_recipe(epochs=1, batch_size=16, precision="float32", seed=3)
    recipe.whitening_images = 20
    x = _images(60, size=32, seed=7)
    index = recipe.whitening_sample(len(x))
    assert len(index) == 20 and len(set(index.tolist())) == 20
    assert index.min() < 20 and index.max() >= 40  # not only the first images
    np.testing.assert_array_equal(index, recipe.whitening_sample(len(x)))  # seeded
    np.testing.assert_array_equal(recipe.whitening_sample(12), np.arange(12))
    recipe.adapt(x)
    whiten = recipe.model.get_layer("tta").layer.get_layer("whiten")
    normalize = recipe.model.get_layer("tta").layer.get_layer("normalize")
    expected = patch_whitening_kernel(
        keras.ops.convert_to_numpy(normalize(x[index].astype("float32")))
    )
    np.testing.assert_allclose(whiten.conv.kernel.numpy(), expected, rtol=1e-4, atol=1e-5)
