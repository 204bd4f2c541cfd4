"""Fine-tuning pretrained backbones: freezing, discriminative learning rates, the recipe.

Importing this package registers the ``<Optimizer>WithLRMultipliers`` classes of
every ``keras.optimizers`` optimizer, so saved models load with their optimizer.
"""

from keras_cnnkit.finetune.freezing import batchnorm_layers, freeze, unfreeze
from keras_cnnkit.finetune.lr_multipliers import (
    lr_multiplier_class,
    stage_lr_multipliers,
    with_lr_multipliers,
)
from keras_cnnkit.finetune.recipe import FineTuneHistories, fine_tune

__all__ = [
    "FineTuneHistories",
    "batchnorm_layers",
    "fine_tune",
    "freeze",
    "lr_multiplier_class",
    "stage_lr_multipliers",
    "unfreeze",
    "with_lr_multipliers",
]
