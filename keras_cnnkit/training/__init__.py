"""Training recipes, losses and schedules."""

from keras_cnnkit.training.cifar10 import (
    cifar10_classic_recipe,
    cifar10_fast_recipe,
    flip_translate,
)
from keras_cnnkit.training.config import RunConfig, load_config
from keras_cnnkit.training.losses import SparseCategoricalCrossentropy
from keras_cnnkit.training.recipe import TrainingRecipe
from keras_cnnkit.training.run import TrainResult, train

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
