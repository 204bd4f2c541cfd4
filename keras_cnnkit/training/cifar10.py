"""The training recipes of the CIFAR-10 networks."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_cnnkit.hardware import resolve_precision
from keras_cnnkit.models.cifar10 import cifar10_classic, cifar10_fast
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
