"""The translation-invariance experiment: dense network vs conv stack, on shifted digits."""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time

import keras
import numpy as np

from keras_cnnkit import io as ckio
from keras_cnnkit.datasets.digits import load_digits_canvas
from keras_cnnkit.errors import MissingDependencyError
from keras_cnnkit.evaluation import plot_shift_gradcam
from keras_cnnkit.evaluation.shift import (
    ShiftRobustness,
    plot_shift_heatmaps,
    shift_robustness,
    summary_table,
)
from keras_cnnkit.io import _files
from keras_cnnkit.layers import ClassifierHead, Normalize
from keras_cnnkit.models.conv_stack import conv_stack
from keras_cnnkit.training.recipe import TrainingRecipe

logger = logging.getLogger("keras_cnnkit")

CONV_SPEC = {
    "stages": [
        {"filters": 16, "pool": "max"},
        {"filters": 32, "pool": "max"},
        {"filters": 64, "pool": None},
    ],
    "head": {"pooling": "max"},
}


@dataclasses.dataclass
class TranslationResult:
    """What :func:`run_translation_experiment` measured.

    Attributes:
        results: Model name to its :class:`~keras_cnnkit.evaluation.ShiftRobustness`.
        best: Name of the model with the best mean accuracy on shifted digits.
        model_path: Where the best model was saved (``.keras``).
        reload_identical: Whether the reloaded model's predictions were identical.
        heatmap_path: The heatmap PNG, or ``None`` without matplotlib.
        seconds: Wall time of each model's training.
        gradcam_path: Grad-CAM overlays of test digits at several shifts, from the
            best convolutional model (see :func:`~keras_cnnkit.evaluation.plot_shift_gradcam`).
    """

    results: dict[str, ShiftRobustness]
    best: str
    model_path: pathlib.Path
    reload_identical: bool
    heatmap_path: pathlib.Path | None
    seconds: dict[str, float]
    gradcam_path: pathlib.Path | None = None

    def table(self) -> str:
        """The Markdown summary table."""
        return summary_table(self.results)


def _dense(input_shape) -> keras.Model:
    inputs = keras.Input(input_shape, dtype="uint8", name="images")
    x = Normalize.from_preset("unit", name="normalize")(inputs)
    outputs = ClassifierHead(10, pooling="flatten", hidden_units=(256, 128), name="head")(x)
    return keras.Model(inputs, outputs, name="dense")


def _train(model, x, y, epochs, augment=None, seed=0, batch_size=64):
    recipe = TrainingRecipe(
        name=model.name,
        model=model,
        make_optimizer=keras.optimizers.Adam,
        make_schedule=lambda _total_steps: 2e-3,
        epochs=epochs,
        batch_size=batch_size,
        augmentation=[augment] if augment is not None else (),
        seed=seed,
        jit_compile="auto",
    )
    start = time.perf_counter()
    recipe.fit(x, y, verbose=0)
    return time.perf_counter() - start


def run_translation_experiment(
    output_dir: str | pathlib.Path = "demo-output",
    *,
    epochs: int = 20,
    max_shift: int = 8,
    shift_step: int = 2,
    seed: int = 0,
) -> TranslationResult:
    """Train three models on centered digits and measure them on shifted digits.

    1. Digits (scikit-learn's, offline) are centered on a 32x32 canvas.
    2. Three models train on the centered digits: a dense network, a conv stack
       with global pooling, and the same conv stack with random translations.
    3. Each is evaluated at every shift in ``-max_shift..max_shift`` (step
       ``shift_step``) on both axes; a heatmap PNG is written when matplotlib is
       installed.
    4. The model with the best mean accuracy on shifted digits is saved to
       ``.keras``, reloaded, and its predictions compared with the original's.
    5. Grad-CAM overlays of four test digits (a 2, 3, 5 and 7) at several shifts, from the best
       convolutional model, are written to ``gradcam_shifts.png``: the map
       moves with the digit.

    Args:
        output_dir: Where the model, heatmap and ``results.json`` are written.
        epochs: Training epochs of each model.
        max_shift: Largest shift in pixels.
        shift_step: Spacing of the evaluated shifts.
        seed: Seed of data split, initialization and augmentation.

    Returns:
        A :class:`TranslationResult`.

    Example:
        >>> result = run_translation_experiment("out", epochs=1)  # doctest: +SKIP
        >>> print(result.table())  # doctest: +SKIP
    """
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    data = load_digits_canvas(seed=seed)
    shape = data.x_train.shape[1:]
    augment = keras.layers.RandomTranslation(
        max_shift / shape[0], max_shift / shape[1], fill_mode="constant", seed=seed
    )
    models = {
        "dense": (_dense(shape), None),
        "conv stack": (conv_stack(CONV_SPEC, input_shape=shape, name="conv_stack"), None),
        "conv stack + shift augmentation": (
            conv_stack(CONV_SPEC, input_shape=shape, name="conv_stack_augmented"),
            augment,
        ),
    }
    shifts = list(range(-max_shift, max_shift + 1, shift_step))
    results: dict[str, ShiftRobustness] = {}
    seconds: dict[str, float] = {}
    for name, (model, aug) in models.items():
        logger.info("training %s (%d parameters)", name, model.count_params())
        seconds[name] = _train(model, data.x_train, data.y_train, epochs, aug, seed)
        results[name] = shift_robustness(model, data.x_test, data.y_test, shifts)

    best = max(results, key=lambda n: results[n].shifted_mean)
    model = models[best][0]
    model_path = output_dir / "best_model.keras"
    ckio.save(model, model_path, {"class_names": [str(d) for d in range(10)]}, overwrite=True)
    reloaded, _ = ckio.load(model_path)
    reload_identical = bool(
        np.array_equal(
            model.predict(data.x_test, verbose=0), reloaded.predict(data.x_test, verbose=0)
        )
    )
    heatmap = None
    try:
        heatmap = plot_shift_heatmaps(
            results, output_dir / "shift_heatmap.png", title="Accuracy on shifted test digits"
        )
    except MissingDependencyError as exc:
        logger.warning("no heatmap: %s", exc)
    conv = best if best != "dense" else "conv stack"  # Grad-CAM needs a convolution
    picks = [int(np.flatnonzero(data.y_test == digit)[0]) for digit in (2, 3, 5, 7)]
    gradcam = plot_shift_gradcam(
        models[conv][0],
        data.x_test[picks],
        output_dir / "gradcam_shifts.png",
        shifts=[(-max_shift, -max_shift), (0, 0), (max_shift, 0), (max_shift, max_shift)],
    )
    _files.write_text(
        output_dir / "results.json",
        json.dumps(
            {
                "models": {
                    n: {
                        "centered": r.centered,
                        "shifted_mean": r.shifted_mean,
                        "worst": r.worst,
                        "train_seconds": seconds[n],
                        "per_shift": r.rows(),
                    }
                    for n, r in results.items()
                },
                "best": best,
                "reload_identical": reload_identical,
                "epochs": epochs,
                "shifts": shifts,
            },
            indent=2,
        ),
    )
    return TranslationResult(results, best, model_path, reload_identical, heatmap, seconds, gradcam)
