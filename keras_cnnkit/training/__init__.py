"""Training: recipes, losses, run configurations and :func:`train`.

The names load on first use, so reading a run configuration
(:func:`load_config`) does not import Keras or TensorFlow.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

#: Public name -> the module that defines it.
_NAMES = {
    "RunConfig": "keras_cnnkit.training.config",
    "load_config": "keras_cnnkit.training.config",
    "SparseCategoricalCrossentropy": "keras_cnnkit.training.losses",
    "TrainResult": "keras_cnnkit.training._run",
    "train": "keras_cnnkit.training._run",
    "TrainingRecipe": "keras_cnnkit.training.recipe",
    "cifar10_classic_recipe": "keras_cnnkit.training.cifar10",
    "cifar10_fast_recipe": "keras_cnnkit.training.cifar10",
    "AirbenchRecipe": "keras_cnnkit.training.cifar10",
    "cifar10_airbench_recipe": "keras_cnnkit.training.cifar10",
    "LookaheadAverage": "keras_cnnkit.training._averaging",
    "FlipShiftBatches": "keras_cnnkit.training._batches",
    "PiecewiseLinear": "keras_cnnkit.training._schedules",
    "flip_translate": "keras_cnnkit.training.cifar10",
}

__all__ = [
    "AirbenchRecipe",
    "FlipShiftBatches",
    "LookaheadAverage",
    "PiecewiseLinear",
    "RunConfig",
    "SparseCategoricalCrossentropy",
    "TrainResult",
    "TrainingRecipe",
    "cifar10_airbench_recipe",
    "cifar10_classic_recipe",
    "cifar10_fast_recipe",
    "flip_translate",
    "load_config",
    "train",
]

if TYPE_CHECKING:  # pragma: no cover
    from keras_cnnkit.training._averaging import LookaheadAverage
    from keras_cnnkit.training._batches import FlipShiftBatches
    from keras_cnnkit.training._run import TrainResult, train
    from keras_cnnkit.training._schedules import PiecewiseLinear
    from keras_cnnkit.training.cifar10 import (
        AirbenchRecipe,
        cifar10_airbench_recipe,
        cifar10_classic_recipe,
        cifar10_fast_recipe,
        flip_translate,
    )
    from keras_cnnkit.training.config import RunConfig, load_config
    from keras_cnnkit.training.losses import SparseCategoricalCrossentropy
    from keras_cnnkit.training.recipe import TrainingRecipe


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_NAMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))


#: Modules whose classes saved models name (losses, schedules, callbacks).
_SERIALIZABLE = ("losses", "_schedules", "_averaging")

if "keras" in sys.modules:  # Keras is loaded already: register those classes now
    for _module in _SERIALIZABLE:
        importlib.import_module(f"keras_cnnkit.training.{_module}")
