"""The training recipes of the CIFAR-10 networks."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import numpy as np

from keras_cnnkit.errors import DataError
from keras_cnnkit.hardware import resolve_precision
from keras_cnnkit.models._flops import forward_flops
from keras_cnnkit.models.cifar10 import cifar10_airbench, cifar10_classic, cifar10_fast
from keras_cnnkit.training._averaging import LookaheadAverage
from keras_cnnkit.training._batches import FlipShiftBatches
from keras_cnnkit.training._schedules import PiecewiseLinear
from keras_cnnkit.training.recipe import TrainingRecipe


def flip_translate(translate: float, seed: int = 0, fill_mode: str = "reflect") -> list:
    """Random horizontal flip and random translation, as Keras preprocessing layers.

    Args:
        translate: Largest shift, as a fraction of height and width.
        seed: Seed of both layers.
        fill_mode: How uncovered pixels are filled (``"reflect"``, ``"nearest"``,
            ``"constant"``...).

    Returns:
        The list of layers, to apply to training batches only.

    Example:
        >>> [type(layer).__name__ for layer in flip_translate(0.1)]
        ['RandomFlip', 'RandomTranslation']
    """
    return [
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(translate, translate, fill_mode=fill_mode, seed=seed + 1),
    ]


def cifar10_classic_recipe(
    *,
    epochs: int = 100,
    batch_size: int = 32,
    num_classes: int = 10,
    input_shape: Sequence[int] = (32, 32, 3),
    precision: str = "auto",
    seed: int = 0,
) -> TrainingRecipe:
    """The classic Keras CIFAR-10 example's recipe.

    RMSprop at ``1e-4`` with the legacy ``decay=1e-6`` (an inverse-time decay per
    step), batch 32, 100 epochs, random flips and 10 % shifts.

    Args:
        epochs: Training epochs.
        batch_size: Batch size.
        num_classes: Number of classes.
        input_shape: Image shape.
        precision: ``"auto"`` or a dtype policy name (see
            :func:`keras_cnnkit.resolve_precision`).
        seed: Seed of shuffling and augmentation.

    Returns:
        A :class:`TrainingRecipe` holding a fresh :func:`cifar10_classic` model.

    Example:
        >>> recipe = cifar10_classic_recipe(epochs=1)
        >>> recipe.batch_size
        32
    """
    policy = resolve_precision(precision)
    return TrainingRecipe(
        name="cifar10_classic",
        model=cifar10_classic(num_classes=num_classes, input_shape=input_shape, dtype=policy),
        make_optimizer=lambda lr: keras.optimizers.RMSprop(learning_rate=lr),
        make_schedule=lambda total: keras.optimizers.schedules.InverseTimeDecay(
            1e-4, decay_steps=1, decay_rate=1e-6
        ),
        epochs=epochs,
        batch_size=batch_size,
        augmentation=flip_translate(0.1, seed=seed, fill_mode="nearest"),
        precision=policy,
        seed=seed,
    )


def cifar10_fast_recipe(
    *,
    epochs: int = 12,
    batch_size: int = 512,
    peak_learning_rate: float | None = None,
    warmup_fraction: float = 0.2,
    weight_decay: float = 5e-4,
    label_smoothing: float = 0.2,
    num_classes: int = 10,
    input_shape: Sequence[int] = (32, 32, 3),
    normalization: str = "batch",
    width: float = 1.0,
    precision: str = "auto",
    seed: int = 0,
) -> TrainingRecipe:
    """The fast ResNet-9-style recipe.

    Nesterov SGD (momentum 0.9) with decoupled weight decay; a linear warmup to
    ``peak_learning_rate`` over the first ``warmup_fraction`` of the steps, then a
    cosine decay to zero; label smoothing; random flips and 4-pixel reflected
    shifts; batch 512; horizontal-flip test-time augmentation; precision chosen
    from the hardware (mixed bfloat16 on CPUs with AMX, mixed float16 on GPUs with
    tensor cores, float32 elsewhere) and the fused BatchNorm.

    Args:
        epochs: Training epochs.
        batch_size: Batch size.
        peak_learning_rate: Learning rate at the end of the warmup; default
            ``0.4 * batch_size / 512`` (the linear scaling rule).
        warmup_fraction: Fraction of all steps spent warming up.
        weight_decay: Decoupled weight decay of SGD.
        label_smoothing: Label smoothing of the cross-entropy.
        num_classes: Number of classes.
        input_shape: Image shape.
        normalization: Normalization of every conv (``"batch"``, ``"keras_batch"``...).
        width: Multiplier of every layer's filters (see :func:`cifar10_fast`).
        precision: ``"auto"`` or a dtype policy name.
        seed: Seed of shuffling and augmentation.

    Returns:
        A :class:`TrainingRecipe` holding a fresh :func:`cifar10_fast` model.

    Example:
        >>> recipe = cifar10_fast_recipe(epochs=1, precision="float32")
        >>> recipe.model.name, recipe.tta_flip
        ('cifar10_fast', True)
    """
    policy = resolve_precision(precision)
    peak = 0.4 * batch_size / 512 if peak_learning_rate is None else peak_learning_rate

    def schedule(total_steps: int):
        warmup = max(1, int(total_steps * warmup_fraction))
        return keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps=max(1, total_steps - warmup),
            warmup_target=peak,
            warmup_steps=warmup,
        )

    return TrainingRecipe(
        name="cifar10_fast",
        model=cifar10_fast(
            num_classes=num_classes,
            input_shape=input_shape,
            normalization=normalization,
            width=width,
            dtype=policy,
        ),
        make_optimizer=lambda lr: keras.optimizers.SGD(
            learning_rate=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
        ),
        make_schedule=schedule,
        epochs=epochs,
        batch_size=batch_size,
        label_smoothing=label_smoothing,
        augmentation=flip_translate(4 / 32, seed=seed, fill_mode="reflect"),
        tta_flip=True,
        precision=policy,
        seed=seed,
    )


@dataclasses.dataclass
class AirbenchRecipe(TrainingRecipe):
    """A :class:`TrainingRecipe` with airbench's data handling and weight averaging.

    Training arrays are fed as :class:`FlipShiftBatches` (alternating flips and
    random shifts of up to :attr:`translate` pixels, on any backend); before the
    first epoch the model's :class:`~keras_cnnkit.layers.PatchWhitening` layers
    are fitted to :attr:`whitening_images` training images (a seeded sample of
    arrays, the first ones of a dataset); with
    :attr:`lookahead`, a :class:`LookaheadAverage` callback averages the weights.
    Test-time augmentation lives in the model, so :meth:`predict` is the model's.

    Attributes:
        translate: Largest training shift in pixels.
        flip: Horizontal flips.
        alternating_flips: With :attr:`flip`, alternate them (``False``: random).
        lookahead: Average the weights with :class:`LookaheadAverage`.
        lookahead_every: Steps between two averaging updates.
        whitening_images: Training images the whitening is fitted to.
    """

    translate: int = 2
    flip: bool = True
    alternating_flips: bool = True
    lookahead: bool = True
    lookahead_every: int = 5
    whitening_images: int = 5000

    def training_data(self, data, *, shuffle: bool = True):
        """Arrays as shuffled, flipped and shifted batches; datasets as they are."""
        if isinstance(data, tuple):
            x, y = data
            return FlipShiftBatches(
                x,
                y,
                batch_size=self.batch_size,
                translate=self.translate,
                flip=self.flip,
                alternate=self.alternating_flips,
                shuffle=shuffle,
                seed=self.seed,
            )
        return super().training_data(data, shuffle=shuffle)

    def validation_data(self, data):
        """Arrays as plain batches (at least 256 a batch); datasets as they are."""
        if isinstance(data, tuple):
            return FlipShiftBatches(*data, batch_size=max(self.batch_size, 256))
        return super().validation_data(data)

    def whitening_sample(self, n: int) -> np.ndarray:
        """Indices of the training images the whitening is fitted to.

        All ``n`` when there are at most :attr:`whitening_images`; else a random sample of
        that many, seeded with :attr:`seed` and in their order, so that arrays sorted by
        class (a sorted ``.npz``) still give every class.

        Args:
            n: Number of training images.

        Returns:
            Sorted indices.
        """
        if n <= self.whitening_images:
            return np.arange(n)
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(n, self.whitening_images, replace=False))

    def adapt(self, x) -> None:
        """Fit the model's patch-whitening layers to a sample of the training images.

        Args:
            x: Training images ``(n, height, width, channels)``, raw pixels; the sample is
                :meth:`whitening_sample`.
        """
        from keras_cnnkit.layers._whitening import PatchWhitening

        images = np.asarray(x[self.whitening_sample(len(x))], dtype="float32")
        for layer in self.model._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, PatchWhitening):
                owner = _model_holding(self.model, layer)
                before = keras.Model(owner.inputs, layer.input)
                layer.adapt(np.asarray(before.predict(images, batch_size=1000, verbose=0)))

    def training_flops(self, num_examples: int, epochs: int | None = None) -> float:
        """Training compute: 3 x forward FLOPs per image x images x epochs.

        Args:
            num_examples: Training images per epoch.
            epochs: Overrides :attr:`epochs`.

        Returns:
            FLOPs (divide by ``1e15`` for PFLOPs).
        """
        return 3.0 * forward_flops(self.model) * num_examples * (epochs or self.epochs)

    def fit(self, x, y=None, *, callbacks=(), initial_epoch: int = 0, **kwargs):
        """Fit the whitening to the training images (first epoch only), then train.

        Takes the arguments of :meth:`TrainingRecipe.fit`. With a dataset of ``(images,
        labels)`` batches instead of arrays, the whitening is fitted to its first
        :attr:`whitening_images` images.
        """
        if initial_epoch == 0:
            self.adapt(x if y is not None else _first_images(x, self.whitening_images))
        extra = []
        if self.lookahead:
            n = kwargs.get("num_examples") or (len(x) if y is not None else None)
            epochs = kwargs.get("epochs") or self.epochs
            steps = self.steps_per_epoch(n) * epochs if n else epochs
            extra.append(LookaheadAverage(total_steps=steps, every=self.lookahead_every))
        return super().fit(
            x, y, callbacks=[*extra, *callbacks], initial_epoch=initial_epoch, **kwargs
        )

    def predict(self, x, batch_size: int = 1000) -> np.ndarray:
        """Class probabilities of the model (which applies its test-time augmentation)."""
        return self.model.predict(FlipShiftBatches(x, batch_size=batch_size), verbose=0)


def _first_images(data, count: int) -> np.ndarray:
    """The first ``count`` images of a dataset of ``(images, ...)`` batches."""
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):  # keras.utils.PyDataset
        batches = (data[i] for i in range(len(data)))
    else:
        batches = iter(data)
    images, total = [], 0
    for batch in batches:
        first = batch[0] if isinstance(batch, (tuple, list)) else batch
        images.append(np.asarray(first))
        total += len(images[-1])
        if total >= count:
            break
    if not total:
        raise DataError("the training dataset is empty: no images to fit the whitening to")
    return np.concatenate(images)[:count]


def _model_holding(model: keras.Model, layer) -> keras.Model:
    """The innermost functional model among ``model`` and its sub-models that calls ``layer``."""
    for sub in model._flatten_layers(include_self=True, recursive=True):
        if isinstance(sub, keras.Model) and any(child is layer for child in sub.layers):
            return sub
    return model


def cifar10_airbench_recipe(
    *,
    epochs: int = 10,
    batch_size: int = 1024,
    learning_rate: float = 11.5,
    momentum: float = 0.85,
    weight_decay: float = 0.0153,
    bias_scale: float = 64.0,
    label_smoothing: float = 0.2,
    warmup_fraction: float = 0.23,
    translate: int = 2,
    flip: bool = True,
    alternating_flips: bool = True,
    whitening: bool = True,
    lookahead: bool = True,
    tta_level: int = 2,
    num_classes: int = 10,
    input_shape: Sequence[int] = (32, 32, 3),
    precision: str = "auto",
    seed: int = 0,
) -> AirbenchRecipe:
    """airbench94's recipe (Jordan, 2024) on keras_cnnkit's engine.

    The :func:`~keras_cnnkit.models.cifar10_airbench` network; Nesterov SGD with
    the learning rate and weight decay given per 1024 examples and normalized by
    the momentum, as in airbench (``learning_rate`` 11.5 is a step of 1.5 at
    batch 1024), decoupled weight decay, 64x the learning rate on the batch norms'
    offsets; the rate rises linearly from 0.2x to its peak over
    ``warmup_fraction`` of the steps, then falls to 0.07x; label smoothing 0.2;
    alternating flips and 2-pixel shifts; the first layer whitened from the
    training images; Lookahead weight averaging every 5 steps; flip and shift
    test-time augmentation inside the model. About 0.71 GFLOPs of training per
    image: 10 epochs of 50,000 images are 0.35 PFLOPs.

    Args:
        epochs: Training epochs.
        batch_size: Batch size.
        learning_rate: Learning rate per 1024 examples (airbench's units).
        momentum: Nesterov momentum.
        weight_decay: Weight decay per 1024 examples (airbench's units).
        bias_scale: Learning-rate factor of the batch norms' offsets.
        label_smoothing: Label smoothing of the cross-entropy.
        warmup_fraction: Fraction of the steps the learning rate rises.
        translate: Largest training shift in pixels.
        flip: Horizontal flips.
        alternating_flips: Alternate the flips each epoch (``False``: random).
        whitening: Patch-whitening first layer (``False``: a learnt convolution).
        lookahead: Lookahead weight averaging.
        tta_level: Test-time augmentation level of the model.
        num_classes: Number of classes.
        input_shape: Image shape.
        precision: ``"auto"`` or a dtype policy name.
        seed: Seed of shuffling and augmentation.

    Returns:
        An :class:`AirbenchRecipe` holding a fresh :func:`cifar10_airbench` model.

    Example:
        >>> recipe = cifar10_airbench_recipe(precision="float32")
        >>> recipe.model.name, recipe.batch_size, round(recipe.training_flops(50_000) / 1e15, 3)
        ('cifar10_airbench', 1024, 0.354)
    """
    from keras_cnnkit.finetune.lr_multipliers import with_lr_multipliers

    policy = resolve_precision(precision)
    model = cifar10_airbench(
        num_classes=num_classes,
        input_shape=input_shape,
        whitening=whitening,
        tta_level=tta_level,
        dtype=policy,
    )
    # airbench's units: a step per 1024 examples, normalized by the momentum's gain.
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    peak = learning_rate * batch_size / kilostep
    # Its decay is coupled (goes through the momentum, gain 1 / (1 - momentum)) and
    # scales with the schedule; Keras' decoupled decay is multiplied by the rate.
    decay = weight_decay / ((1 - momentum) * learning_rate)
    norms = [layer.name for layer in model.get_layer("tta").layer.layers if "_norm" in layer.name]

    def schedule(total_steps: int):
        warmup = max(1, int(total_steps * warmup_fraction))
        return PiecewiseLinear(
            [0, warmup, max(total_steps, warmup + 1)], [0.2 * peak, peak, 0.07 * peak]
        )

    return AirbenchRecipe(
        name="cifar10_airbench",
        model=model,
        make_optimizer=lambda lr: with_lr_multipliers(
            keras.optimizers.SGD(
                learning_rate=lr, momentum=momentum, nesterov=True, weight_decay=decay
            ),
            {name: bias_scale for name in norms},
        ),
        make_schedule=schedule,
        epochs=epochs,
        batch_size=batch_size,
        label_smoothing=label_smoothing,
        precision=policy,
        seed=seed,
        translate=translate,
        flip=flip,
        alternating_flips=alternating_flips,
        lookahead=lookahead,
    )
