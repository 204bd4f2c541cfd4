"""A small model learns from a from_directory pipeline over real CIFAR-10 JPEGs."""

from __future__ import annotations

import shutil

import keras
import pytest

from keras_cnnkit.data import from_directory
from keras_cnnkit.layers import Normalize

pytestmark = pytest.mark.tensorflow("tf.data pipelines and tf.image resizing")


@pytest.mark.shared_data
def test_model_trains_on_cifar10_files(cifar10_dir, tmp_path):
    # 2 visually distinct classes x 100 images, copied so the test owns its folder
    root = tmp_path / "cifar2"
    for name in ("airplane", "frog"):
        (root / name).mkdir(parents=True)
        for f in sorted((cifar10_dir / name).iterdir())[:100]:
            shutil.copy(f, root / name / f.name)
    train, val = from_directory(
        root,
        image_size=32,
        batch_size=32,
        seed=0,
        validation_split=0.25,
        subset="both",
        augment={"flip": True},
        cache="memory",
    )
    assert train.class_names == ["airplane", "frog"]
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            Normalize.from_preset("unit"),  # normalization inside the model
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(train, validation_data=val, epochs=8, shuffle=False, verbose=0)
    assert history.history["accuracy"][-1] > 0.7
    assert history.history["val_accuracy"][-1] > 0.65
