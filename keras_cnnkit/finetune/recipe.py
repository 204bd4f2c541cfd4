"""The two-phase fine-tuning recipe: train the head, then unfreeze and continue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import keras

from keras_cnnkit.errors import SpecError
from keras_cnnkit.finetune.freezing import freeze, unfreeze
from keras_cnnkit.finetune.lr_multipliers import stage_lr_multipliers, with_lr_multipliers
from keras_cnnkit.training.recipe import TrainingRecipe


class FineTuneHistories(NamedTuple):
    """The ``keras.callbacks.History`` of each phase of :func:`fine_tune`."""

    head: keras.callbacks.History
    full: keras.callbacks.History | None


def _optimizer(optimizer, learning_rate: float) -> keras.optimizers.Optimizer:
    opt = keras.optimizers.get(optimizer)
    config = opt.get_config()
    config["learning_rate"] = float(learning_rate)
    return type(opt).from_config(config)


def fine_tune(
    model: keras.Model,
    train,
    val=None,
    *,
    head_epochs: int = 2,
    epochs: int = 3,
    base_lr: float = 1e-4,
    head_lr: float | None = None,
    lr_mult: float | Sequence[float] | None = 0.1,
    last_n_stages: int | None = None,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    loss="sparse_categorical_crossentropy",
    metrics: Sequence = ("accuracy",),
    callbacks: Sequence[keras.callbacks.Callback] = (),
    compile_kwargs: Mapping | None = None,
    verbose: int | str = 0,
    **fit_kwargs,
) -> FineTuneHistories:
    """Fine-tune a transfer-learning classifier in two phases.

    1. The backbone is frozen and the head trains for ``head_epochs`` at
       ``head_lr``.
    2. The backbone (or its last ``last_n_stages`` stages) is unfrozen and the
       whole model trains ``epochs`` more epochs, the head at ``base_lr`` and
       the backbone stages at ``base_lr`` times their :func:`stage_lr_multipliers`
       factor.

    BatchNorm layers of the backbone stay in inference mode throughout when
    the model was built with ``train_batchnorm=False`` (the default).

    Args:
        model: A model from :func:`keras_cnnkit.backbones.build_classifier`.
        train: Training data accepted by ``model.fit`` (a ``tf.data.Dataset`` of
            ``(uint8 images, labels)`` batches, a ``(x, y)`` tuple of arrays...).
        val: Validation data (same forms), or ``None``.
        head_epochs: Epochs of phase 1 (0 skips it).
        epochs: Epochs of phase 2 (0 skips it).
        base_lr: Learning rate of the head in phase 2.
        head_lr: Learning rate of phase 1; ``10 * base_lr`` by default.
        lr_mult: Learning-rate factor of the first backbone stage, or one per
            stage (see :func:`stage_lr_multipliers`); ``None`` trains every stage
            at ``base_lr``.
        last_n_stages: Unfreeze only this many of the deepest stages in phase 2.
        optimizer: A Keras optimizer name or instance (its learning rate is
            replaced).
        loss: Loss for ``compile`` (the default matches integer labels and a
            softmax head).
        metrics: Metrics for ``compile``.
        callbacks: Callbacks passed to both ``fit`` calls.
        compile_kwargs: Other ``compile`` arguments of both phases
            (``run_eagerly``, ``jit_compile``...).
        verbose: Verbosity of ``fit``.
        **fit_kwargs: ``batch_size`` for array data (32 by default). Both phases train
            through :meth:`keras_cnnkit.training.TrainingRecipe.fit`.

    Returns:
        The histories of both phases (``full`` is ``None`` when ``epochs=0``).

    Raises:
        SpecError: On negative epochs or a non-positive learning rate.

    Example:
        >>> import numpy as np
        >>> from keras_cnnkit.backbones import build_classifier
        >>> m = build_classifier("vgg16", 2, input_shape=(32, 32, 3), weights=None)
        >>> x = np.zeros((4, 32, 32, 3), "uint8"); y = np.array([0, 1, 0, 1])
        >>> h = fine_tune(m, (x, y), head_epochs=1, epochs=1, batch_size=2)
        >>> len(h.head.history["loss"]), len(h.full.history["loss"])
        (1, 1)
    """
    if head_epochs < 0 or epochs < 0:
        raise SpecError(f"epochs must be >= 0, got head_epochs={head_epochs}, epochs={epochs}")
    head_lr = 10.0 * base_lr if head_lr is None else head_lr
    if base_lr <= 0 or head_lr <= 0:
        raise SpecError(
            f"learning rates must be positive, got base_lr={base_lr}, head_lr={head_lr}"
        )
    batch_size = int(fit_kwargs.pop("batch_size", 32))
    if fit_kwargs:
        raise SpecError(
            f"fine_tune does not take {sorted(fit_kwargs)}; it trains through "
            "TrainingRecipe.fit (batch_size is the only other fit argument)"
        )

    compile_kwargs = dict(compile_kwargs or {})
    jit_compile = compile_kwargs.pop("jit_compile", "auto")

    def phase(name: str, opt, phase_epochs: int) -> TrainingRecipe:
        return TrainingRecipe(
            name=name,
            model=model,
            make_optimizer=lambda _schedule: opt,
            make_schedule=lambda _total: None,
            epochs=phase_epochs,
            batch_size=batch_size,
            loss=loss,
            metrics=list(metrics),
            compile_kwargs=compile_kwargs,
            jit_compile=jit_compile,
        )

    freeze(model)
    head = phase("fine_tune_head", _optimizer(optimizer, head_lr), head_epochs).fit(
        train, validation_data=val, callbacks=callbacks, verbose=verbose
    )
    if epochs == 0:
        return FineTuneHistories(head, None)

    unfreeze(model, last_n_stages)
    opt = _optimizer(optimizer, base_lr)
    if lr_mult is not None:
        opt = with_lr_multipliers(opt, stage_lr_multipliers(model, lr_mult))
    full = phase("fine_tune", opt, head_epochs + epochs).fit(
        train,
        validation_data=val,
        initial_epoch=head_epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    return FineTuneHistories(head, full)
