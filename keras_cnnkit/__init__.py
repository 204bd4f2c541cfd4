"""keras_cnnkit: convolutional image models for Keras 3.

Build a network from a declarative spec, train it with a ready recipe at the
precision the hardware runs fastest, and measure how well it tolerates shifts::

    import keras_cnnkit as ck
    model = ck.conv_stack({"stages": [32, 64, 128], "head": {"pooling": "avg"}},
                          input_shape=(32, 32, 3), num_classes=10)
"""

import importlib
import sys
from typing import TYPE_CHECKING

from keras_cnnkit._version import __version__

# Names load on first use, so that ``cnnkit --help`` and reading a configuration do not
# import Keras and TensorFlow. Importing keras_cnnkit after Keras (or using any of its
# names) loads every subpackage, which registers every class with Keras.
_SUBPACKAGES = (
    "backbones",
    "data",
    "datasets",
    "errors",
    "evaluation",
    "finetune",
    "io",
    "layers",
    "models",
    "preprocessing",
    "training",
)
_NAMES = {
    "backbone_entry": "keras_cnnkit.backbones",
    "backbone_model": "keras_cnnkit.backbones",
    "build_classifier": "keras_cnnkit.backbones",
    "feature_extractor": "keras_cnnkit.backbones",
    "get_backbone": "keras_cnnkit.backbones",
    "list_backbones": "keras_cnnkit.backbones",
    "save_backbone_weights": "keras_cnnkit.backbones",
    "DataConfig": "keras_cnnkit.data",
    "data_config": "keras_cnnkit.data",
    "from_arrays": "keras_cnnkit.data",
    "from_directory": "keras_cnnkit.data",
    "from_files": "keras_cnnkit.data",
    "load_image_folder": "keras_cnnkit.data",
    "read_image": "keras_cnnkit.data",
    "shift_robustness": "keras_cnnkit.evaluation",
    "fine_tune": "keras_cnnkit.finetune",
    "freeze": "keras_cnnkit.finetune",
    "unfreeze": "keras_cnnkit.finetune",
    "HardwareInfo": "keras_cnnkit.hardware",
    "detect_hardware": "keras_cnnkit.hardware",
    "resolve_precision": "keras_cnnkit.hardware",
    "ConvStackSpec": "keras_cnnkit.models",
    "HeadSpec": "keras_cnnkit.models",
    "StageSpec": "keras_cnnkit.models",
    "cifar10_airbench": "keras_cnnkit.models",
    "cifar10_classic": "keras_cnnkit.models",
    "cifar10_fast": "keras_cnnkit.models",
    "conv_stack": "keras_cnnkit.models",
    "reset_classifier": "keras_cnnkit.models",
    "TrainingRecipe": "keras_cnnkit.training",
    "cifar10_airbench_recipe": "keras_cnnkit.training",
    "cifar10_classic_recipe": "keras_cnnkit.training",
    "cifar10_fast_recipe": "keras_cnnkit.training",
    "TrainResult": "keras_cnnkit.training",
    "train": "keras_cnnkit.training",
}

if TYPE_CHECKING:  # pragma: no cover
    from keras_cnnkit import (
        backbones,
        data,
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
    from keras_cnnkit.backbones import (
        backbone_entry,
        backbone_model,
        build_classifier,
        feature_extractor,
        get_backbone,
        list_backbones,
        save_backbone_weights,
    )
    from keras_cnnkit.data import (
        DataConfig,
        data_config,
        from_arrays,
        from_directory,
        from_files,
        load_image_folder,
        read_image,
    )
    from keras_cnnkit.evaluation import shift_robustness
    from keras_cnnkit.finetune import fine_tune, freeze, unfreeze
    from keras_cnnkit.hardware import HardwareInfo, detect_hardware, resolve_precision
    from keras_cnnkit.models import (
        ConvStackSpec,
        HeadSpec,
        StageSpec,
        cifar10_airbench,
        cifar10_classic,
        cifar10_fast,
        conv_stack,
        reset_classifier,
    )
    from keras_cnnkit.training import (
        TrainingRecipe,
        TrainResult,
        cifar10_airbench_recipe,
        cifar10_classic_recipe,
        cifar10_fast_recipe,
        train,
    )


def _load_all() -> None:
    for name in _SUBPACKAGES:
        importlib.import_module(f"keras_cnnkit.{name}")


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        _load_all()
        return importlib.import_module(f"keras_cnnkit.{name}")
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _load_all()
    value = getattr(importlib.import_module(_NAMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SUBPACKAGES) | set(_NAMES))


if "keras" in sys.modules:  # Keras is loaded already: register every class now
    _load_all()

__all__ = [
    "ConvStackSpec",
    "DataConfig",
    "HardwareInfo",
    "HeadSpec",
    "StageSpec",
    "TrainResult",
    "TrainingRecipe",
    "__version__",
    "backbone_entry",
    "backbone_model",
    "backbones",
    "build_classifier",
    "cifar10_airbench",
    "cifar10_airbench_recipe",
    "cifar10_classic",
    "cifar10_classic_recipe",
    "cifar10_fast",
    "cifar10_fast_recipe",
    "conv_stack",
    "data",
    "data_config",
    "datasets",
    "detect_hardware",
    "errors",
    "evaluation",
    "feature_extractor",
    "fine_tune",
    "finetune",
    "freeze",
    "from_arrays",
    "from_directory",
    "from_files",
    "get_backbone",
    "io",
    "layers",
    "list_backbones",
    "load_image_folder",
    "models",
    "preprocessing",
    "read_image",
    "reset_classifier",
    "resolve_precision",
    "save_backbone_weights",
    "shift_robustness",
    "train",
    "training",
    "unfreeze",
]
