"""Training: recipes, losses, run configurations and :func:`train`.

The names load on first use, so reading a run configuration
(:func:`load_config`) does not import Keras or TensorFlow.
"""

from __future__ import annotations

import importlib
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
    "flip_translate": "keras_cnnkit.training.cifar10",
}

__all__ = [
    "RunConfig",
    "SparseCategoricalCrossentropy",
    "TrainResult",
    "TrainingRecipe",
    "cifar10_classic_recipe",
    "cifar10_fast_recipe",
    "flip_translate",
    "load_config",
    "train",
]

if TYPE_CHECKING:  # pragma: no cover
    from keras_cnnkit.training._run import TrainResult, train
    from keras_cnnkit.training.cifar10 import (
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
