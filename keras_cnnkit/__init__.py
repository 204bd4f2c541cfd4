"""keras_cnnkit: convolutional image models for Keras 3.

Build a network from a declarative spec, train it with a ready recipe at the
precision the hardware runs fastest, and measure how well it tolerates shifts::

    import keras_cnnkit as ck
    model = ck.conv_stack({"stages": [32, 64, 128], "head": {"pooling": "avg"}},
                          input_shape=(32, 32, 3), num_classes=10)
"""

from keras_cnnkit import (
    backbones,
    datasets,
    errors,
    evaluation,
    finetune,
    io,
    layers,
    models,
    preprocessing,
    training,
)
from keras_cnnkit._version import __version__
from keras_cnnkit.backbones import (
    build_classifier,
    feature_extractor,
    get_backbone,
    list_backbones,
    save_backbone_weights,
)
from keras_cnnkit.datasets import load_image_folder
from keras_cnnkit.evaluation import shift_robustness
from keras_cnnkit.finetune import fine_tune, freeze, unfreeze
from keras_cnnkit.hardware import HardwareInfo, detect_hardware, resolve_precision
from keras_cnnkit.models import (
    ConvStackSpec,
    HeadSpec,
    StageSpec,
    cifar10_classic,
    cifar10_fast,
    conv_stack,
)
from keras_cnnkit.training import TrainingRecipe, cifar10_classic_recipe, cifar10_fast_recipe

__all__ = [
    "ConvStackSpec",
    "HardwareInfo",
    "HeadSpec",
    "StageSpec",
    "TrainingRecipe",
    "__version__",
    "backbones",
    "build_classifier",
    "cifar10_classic",
    "cifar10_classic_recipe",
    "cifar10_fast",
    "cifar10_fast_recipe",
    "conv_stack",
    "datasets",
    "detect_hardware",
    "errors",
    "evaluation",
    "feature_extractor",
    "fine_tune",
    "finetune",
    "freeze",
    "get_backbone",
    "io",
    "layers",
    "list_backbones",
    "load_image_folder",
    "models",
    "preprocessing",
    "resolve_precision",
    "save_backbone_weights",
    "shift_robustness",
    "training",
    "unfreeze",
]
