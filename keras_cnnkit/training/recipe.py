"""A training recipe: a model with its optimizer, schedule, data handling and epochs."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_cnnkit.errors import DataError
from keras_cnnkit.hardware import detect_hardware
from keras_cnnkit.training.losses import SparseCategoricalCrossentropy


@dataclasses.dataclass
class TrainingRecipe:
    """Everything needed to train one model well, callable in one line.

    A recipe owns the model and knows how to build its optimizer and learning-rate
    schedule for a given number of steps, how to batch and augment the data, and
    how to evaluate (optionally with horizontal-flip test-time augmentation).

    Attributes:
        name: Name of the recipe.
        model: The (uncompiled) model.
        make_optimizer: ``f(schedule) -> optimizer``.
        make_schedule: ``f(total_steps) -> learning rate or schedule``.
        epochs: Number of training epochs.
        batch_size: Training batch size.
        label_smoothing: Label smoothing of the cross-entropy loss.
        augmentation: Keras preprocessing layers applied to training batches only.
        tta_flip: Average predictions on the image and its mirror image at evaluation.
        precision: The dtype policy the model was built with.
        seed: Seed of shuffling and augmentation.
        jit_compile: Passed to ``compile``; ``None`` keeps XLA off for TensorFlow on
            a CPU (where it is slower than graph mode) and lets Keras decide elsewhere.
    """

    name: str
    model: keras.Model
    make_optimizer: Callable[[Any], keras.optimizers.Optimizer]
    make_schedule: Callable[[int], Any]
    epochs: int
    batch_size: int
    label_smoothing: float = 0.0
    augmentation: Sequence[keras.layers.Layer] = ()
    tta_flip: bool = False
    precision: str = "float32"
    seed: int = 0
    jit_compile: bool | str | None = None

    def steps_per_epoch(self, num_examples: int) -> int:
        """Number of training steps of one epoch over ``num_examples``."""
        return max(1, math.ceil(num_examples / self.batch_size))

    def compile(self, num_examples: int, epochs: int | None = None) -> keras.Model:
        """Compile the model with the recipe's optimizer, schedule and loss.

        Args:
            num_examples: Training-set size (sets the schedule's length).
            epochs: Overrides :attr:`epochs` for the schedule.

        Returns:
            The compiled model.
        """
        total = self.steps_per_epoch(num_examples) * (epochs or self.epochs)
        optimizer = self.make_optimizer(self.make_schedule(total))
        if self.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        jit = self.jit_compile
        if jit is None:
            info = detect_hardware()
            jit = False if (info.backend == "tensorflow" and info.device == "cpu") else "auto"
        self.model.compile(
            optimizer=optimizer,
            jit_compile=jit,
            loss=SparseCategoricalCrossentropy(label_smoothing=self.label_smoothing),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        return self.model

    def metadata(self) -> dict[str, Any]:
        """What a run of this recipe should record: recipe, precision and why, hardware.

        Returns:
            Plain data (JSON-serializable).
        """
        info = detect_hardware()
        return {
            "recipe": self.name,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "label_smoothing": self.label_smoothing,
            "precision": self.precision,
            "precision_reason": (
                info.reason if self.precision == info.precision else "chosen by the caller"
            ),
            "hardware": info.as_dict(),
            "seed": self.seed,
        }

    def dataset(self, x, y=None, *, training: bool = False, batch_size: int | None = None):
        """Batch arrays into a ``tf.data.Dataset`` (shuffled and augmented when training).

        Args:
            x: Images, ``(n, height, width, channels)``, uint8 or 0..255 floats.
            y: Integer labels ``(n,)``, or ``None``.
            training: Shuffle with :attr:`seed` and apply :attr:`augmentation`.
            batch_size: Overrides :attr:`batch_size`.

        Returns:
            A dataset of ``(images, labels)`` (or images) batches.

        Raises:
            DataError: If the arrays do not have matching lengths or image shapes.
        """
        import tensorflow as tf

        x = np.asarray(x)
        if x.ndim != 4:
            raise DataError(
                f"x must be a 4-D array (n, height, width, channels), got shape {x.shape}"
            )
        if y is not None:
            y = np.asarray(y).reshape(-1)
            if len(y) != len(x):
                raise DataError(f"x and y differ in length: {len(x)} images, {len(y)} labels")
        data = (x, y.astype("int32")) if y is not None else x
        ds = tf.data.Dataset.from_tensor_slices(data)
        if training:
            ds = ds.shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size or self.batch_size)
        if training and self.augmentation:
            layers = list(self.augmentation)

            def augment(images, *labels):
                images = tf.cast(images, tf.float32)
                for layer in layers:
                    images = layer(images, training=True)
                return (images, *labels) if labels else images

            ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def fit(
        self,
        x,
        y,
        *,
        validation_data: tuple | None = None,
        epochs: int | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        verbose: str | int = "auto",
    ) -> keras.callbacks.History:
        """Compile and train the model on arrays.

        Args:
            x: Training images.
            y: Integer training labels.
            validation_data: Optional ``(x_val, y_val)``.
            epochs: Overrides :attr:`epochs`.
            callbacks: Keras callbacks.
            verbose: Keras verbosity.

        Returns:
            The Keras ``History``.
        """
        epochs = epochs or self.epochs
        self.compile(len(x), epochs)
        val = None
        if validation_data is not None:
            val = self.dataset(*validation_data, batch_size=max(self.batch_size, 256))
        return self.model.fit(
            self.dataset(x, y, training=True),
            validation_data=val,
            epochs=epochs,
            callbacks=list(callbacks),
            verbose=verbose,
            shuffle=False,  # the dataset shuffles itself, with the recipe's seed
        )

    def predict(self, x, batch_size: int = 512) -> np.ndarray:
        """Class probabilities, averaged with the mirror image when :attr:`tta_flip`."""
        ds = self.dataset(x, batch_size=batch_size)
        probs = self.model.predict(ds, verbose=0)
        if self.tta_flip:
            flipped = self.dataset(np.asarray(x)[:, :, ::-1], batch_size=batch_size)
            probs = (probs + self.model.predict(flipped, verbose=0)) / 2.0
        return probs

    def evaluate(self, x, y, batch_size: int = 512) -> float:
        """Accuracy on ``(x, y)``, with flip test-time augmentation when :attr:`tta_flip`."""
        y = np.asarray(y).reshape(-1)
        return float(np.mean(self.predict(x, batch_size).argmax(-1) == y))
