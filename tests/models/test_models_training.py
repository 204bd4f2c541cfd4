import keras
import numpy as np
import pytest

from keras_cnnkit import cifar10_classic_recipe, cifar10_fast_recipe, load_image_folder
from keras_cnnkit.datasets import load_digits_canvas
from keras_cnnkit.errors import DataError


def test_fast_recipe_learns_digits():
    data = load_digits_canvas(canvas_size=16, digit_size=16)
    recipe = cifar10_fast_recipe(
        epochs=4, batch_size=64, input_shape=(16, 16, 1), width=0.25, precision="float32"
    )
    history = recipe.fit(data.x_train, data.y_train, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    accuracy = recipe.evaluate(data.x_test, data.y_test)
    assert accuracy > 0.6, accuracy  # chance is 0.1


def test_recipe_schedule_warms_up_then_decays():
    recipe = cifar10_fast_recipe(epochs=2, batch_size=10, peak_learning_rate=0.4, width=0.125)
    recipe.compile(num_examples=100)
    schedule = recipe.model.optimizer._learning_rate
    lrs = [float(schedule(step)) for step in (0, 4, 8, 14, 19)]
    assert lrs[0] == pytest.approx(0.0)
    assert lrs[1] == pytest.approx(0.4, rel=1e-3)  # warmup is 20 % of 20 steps
    assert lrs[1] > lrs[2] > lrs[3] > lrs[4] >= 0.0


def test_classic_recipe_matches_the_keras_example():
    recipe = cifar10_classic_recipe(precision="float32")
    assert (recipe.batch_size, recipe.epochs) == (32, 100)
    recipe.compile(num_examples=320)
    assert type(recipe.model.optimizer).__name__ == "RMSprop"


def test_tta_averages_the_mirror_image():
    recipe = cifar10_fast_recipe(input_shape=(16, 16, 3), width=0.125, precision="float32")
    x = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype("uint8")
    plain = recipe.model.predict(x, verbose=0)
    mirrored = recipe.model.predict(x[:, :, ::-1], verbose=0)
    np.testing.assert_allclose(recipe.predict(x), (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)


def test_recipe_dataset_rejects_bad_arrays():
    recipe = cifar10_fast_recipe(input_shape=(16, 16, 3), width=0.125, precision="float32")
    with pytest.raises(DataError, match="4-D"):
        recipe.dataset(np.zeros((4, 16, 16)), np.zeros(4))
    with pytest.raises(DataError, match="4 images, 3 labels"):
        recipe.dataset(np.zeros((4, 16, 16, 3)), np.zeros(3))


def test_augmentation_is_seeded():
    x = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3)).astype("uint8")

    def first_batch(seed):
        recipe = cifar10_fast_recipe(input_shape=(16, 16, 3), width=0.125, seed=seed)
        return next(iter(recipe.dataset(x, np.arange(8), training=True)))

    (a, la), (b, lb), (c, _) = first_batch(3), first_batch(3), first_batch(4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(la.numpy(), lb.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    # augmented: not just a reordering of the original images
    originals = {x[i].tobytes() for i in range(8)}
    assert sum(img.astype("uint8").tobytes() in originals for img in a.numpy()) < 8


@pytest.mark.shared_data
def test_fast_recipe_beats_chance_on_real_cifar10(cifar10_dir):
    classes = ["airplane", "automobile", "frog", "horse"]
    data = load_image_folder(cifar10_dir, classes=classes, max_per_class=250)
    train, val = data.split(200, seed=0)
    recipe = cifar10_fast_recipe(
        epochs=6, batch_size=32, width=0.25, num_classes=len(classes), precision="auto"
    )
    recipe.fit(train.x, train.y, verbose=0)
    accuracy = recipe.evaluate(val.x, val.y)
    assert accuracy > 0.5, accuracy  # chance is 0.25


def test_recipe_keeps_xla_off_on_cpu_and_records_metadata():
    from keras_cnnkit import detect_hardware

    recipe = cifar10_fast_recipe(width=0.125, precision="auto")
    recipe.compile(num_examples=64)
    info = detect_hardware()
    if info.device == "cpu" and keras.backend.backend() == "tensorflow":
        # XLA is slower than TensorFlow's own kernels on CPU; JAX always compiles.
        assert recipe.model.jit_compile is False
    meta = recipe.metadata()
    assert meta["precision"] == info.precision
    assert meta["precision_reason"] == info.reason
    assert meta["hardware"]["backend"] == keras.backend.backend()
