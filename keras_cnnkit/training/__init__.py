"""Training recipes, losses and schedules."""

from keras_cnnkit.training.cifar10 import (
    cifar10_classic_recipe,
    cifar10_fast_recipe,
    flip_translate,
)
from keras_cnnkit.training.losses import SparseCategoricalCrossentropy
from keras_cnnkit.training.recipe import TrainingRecipe

__all__ = [
    "SparseCategoricalCrossentropy",
    "TrainingRecipe",
    "cifar10_classic_recipe",
    "cifar10_fast_recipe",
    "flip_translate",
]
