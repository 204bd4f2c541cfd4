"""A training recipe: a model with its optimizer, schedule, data handling and epochs."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from keras_cnnkit.errors import DataError
from keras_cnnkit.hardware import detect_hardware
from keras_cnnkit.training.losses import SparseCategoricalCrossentropy

__all__ = [
    "TrainingRecipe",
]


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
        loss: The loss; ``None`` is the sparse categorical cross-entropy with
            :attr:`label_smoothing`.
        metrics: The metrics; ``None`` is the accuracy (and the top-k accuracy with
            :attr:`top_k`).
        top_k: Also report the top-k accuracy when ``1 < top_k < number of classes``.
        compile_kwargs: Other ``compile`` arguments (``run_eagerly``...).

    :meth:`fit` is the one place keras_cnnkit trains a model: :func:`train`, the
    fine-tuning phases and the experiments all go through it.
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
    loss: Any = None
    metrics: Sequence | None = None
    top_k: int = 0
    compile_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def steps_per_epoch(self, num_examples: int) -> int:
        """Number of training steps of one epoch over ``num_examples``."""
        return max(1, math.ceil(num_examples / self.batch_size))

    def compile(self, num_examples: int, epochs: int | None = None) -> keras.Model:
        """Compile the model with the recipe's optimizer, schedule, loss and metrics.

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
        loss = self.loss
        if loss is None:
            loss = SparseCategoricalCrossentropy(label_smoothing=self.label_smoothing)
        if self.metrics is None:
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            classes = self.model.output_shape[-1]
            if 1 < self.top_k < (classes or 0):
                metrics.append(
                    keras.metrics.SparseTopKCategoricalAccuracy(
                        k=self.top_k, name=f"top{self.top_k}_accuracy"
                    )
                )
        else:
            metrics = list(self.metrics)
        self.model.compile(
            optimizer=optimizer,
            jit_compile=jit,
            loss=loss,
            metrics=metrics,
            **dict(self.compile_kwargs),
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

    def dataset(
        self,
        x,
        y=None,
        *,
        training: bool = False,
        batch_size: int | None = None,
        shuffle: bool = True,
    ):
        """Batch arrays into a ``tf.data.Dataset`` (shuffled and augmented when training).

        Args:
            x: Images, ``(n, height, width, channels)``, uint8 or 0..255 floats.
            y: Integer labels ``(n,)``, or ``None``.
            training: Apply :attr:`augmentation` (and shuffle, unless ``shuffle`` is
                false) with :attr:`seed`.
            batch_size: Overrides :attr:`batch_size`.
            shuffle: With ``training``, shuffle every epoch.

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
        if training and shuffle:
            ds = ds.shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size or self.batch_size)
        if training:
            ds = self.augment(ds)
        return ds.prefetch(tf.data.AUTOTUNE)

    def augment(self, ds):
        """Apply :attr:`augmentation` to a dataset of ``(images, ...)`` batches.

        Args:
            ds: A batched ``tf.data.Dataset``.

        Returns:
            The augmented dataset (``ds`` itself when there is no augmentation).
        """
        if not self.augmentation:
            return ds
        import tensorflow as tf

        layers = list(self.augmentation)

        def augment(images, *rest):
            images = tf.cast(images, tf.float32)
            for layer in layers:
                images = layer(images, training=True)
            return (images, *rest) if rest else images

        return ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)

    def training_data(self, data, *, shuffle: bool = True):
        """The training dataset: batched, shuffled and augmented.

        Args:
            data: ``(x, y)`` arrays, or a ``tf.data.Dataset`` of ``(images, labels)``
                batches (already shuffled and batched; only augmented here).
            shuffle: Shuffle arrays every epoch.

        Returns:
            The dataset.
        """
        if isinstance(data, tuple):
            return self.dataset(*data, training=True, shuffle=shuffle)
        return self.augment(data)

    def validation_data(self, data):
        """The validation dataset: arrays batched (at least 256 a batch), datasets as they are."""
        if data is None or not isinstance(data, tuple):
            return data
        return self.dataset(*data, batch_size=max(self.batch_size, 256))

    def fit(
        self,
        x,
        y=None,
        *,
        validation_data=None,
        epochs: int | None = None,
        initial_epoch: int = 0,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        verbose: str | int = "auto",
        shuffle: bool = True,
        num_examples: int | None = None,
        compile: bool = True,
        transform: Callable | None = None,
    ) -> keras.callbacks.History:
        """Compile the model and train it: the one training loop of keras_cnnkit.

        Args:
            x: Training images (with ``y``), or a ``tf.data.Dataset`` of ``(images,
                labels)`` batches.
            y: Integer training labels when ``x`` holds images.
            validation_data: ``(x_val, y_val)`` arrays, a dataset, or ``None``.
            epochs: Train until this epoch (overrides :attr:`epochs`).
            initial_epoch: The epoch to start at (the schedule still spans
                ``epochs``).
            callbacks: Keras callbacks.
            verbose: Keras verbosity.
            shuffle: Shuffle array data every epoch (datasets shuffle themselves).
            num_examples: Training-set size, for the schedule's length (taken from
                ``x`` for arrays).
            compile: Compile first (``False``: the caller compiled it, for example in a
                distribution scope).
            transform: ``f(dataset, training) -> dataset`` applied to both datasets
                after batching and augmentation (for example one process's shard).

        Returns:
            The Keras ``History``.
        """
        epochs = epochs or self.epochs
        data = (x, y) if y is not None else x
        if num_examples is None:
            num_examples = _num_examples(data, self.batch_size)
        train = self.training_data(data, shuffle=shuffle)
        val = self.validation_data(validation_data)
        if transform is not None:
            train = transform(train, True)
            val = transform(val, False) if val is not None else None
        if compile:
            self.compile(num_examples, epochs)
        steps_per_epoch = None
        if isinstance(train, keras.utils.PyDataset):
            # One stream for the whole run: Keras keeps an iterator across epochs only
            # when it is told the epoch's length, and restarting it every epoch costs a
            # step's worth of time or more.
            steps_per_epoch = len(train)
            train = _endless(train)
        with warnings.catch_warnings():
            # Keras' ``fit`` warns of a ``shuffle`` it ignores for datasets; ours are
            # shuffled by the dataset itself, with the seed.
            warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed")
            return self.model.fit(
                train,
                validation_data=val,
                epochs=epochs,
                initial_epoch=initial_epoch,
                callbacks=list(callbacks),
                verbose=verbose,
                shuffle=False,
                steps_per_epoch=steps_per_epoch,
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


def _endless(batches: keras.utils.PyDataset):
    """The batches of ``batches`` epoch after epoch, with its ``on_epoch_end`` between.

    The same batches in the same order as Keras' own iteration of the dataset, as one
    generator that never restarts.
    """
    while True:
        batches.on_epoch_begin()
        for i in range(len(batches)):
            yield batches[i]
        batches.on_epoch_end()


def _num_examples(data, batch_size: int) -> int:
    """Examples in ``(x, y)`` arrays, or batches times ``batch_size`` in a finite dataset."""
    if isinstance(data, tuple):
        return len(data[0])
    try:
        steps = int(data.cardinality())
    except (AttributeError, TypeError, ValueError):
        return batch_size
    return steps * batch_size if steps > 0 else batch_size
