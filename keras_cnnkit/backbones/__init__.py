"""Pretrained keras.applications backbones: registry, classifiers and feature extractors.

Every convolutional network of ``keras.applications`` is registered with the
preprocessing its ImageNet weights expect, its default and minimum input sizes,
and the layers that end its stages.
"""

from keras_cnnkit.backbones import applications as _applications  # noqa: F401  (registers)
from keras_cnnkit.backbones.classifier import build_classifier, feature_extractor
from keras_cnnkit.backbones.imagenet import decode_predictions, imagenet_classifier
from keras_cnnkit.backbones.inference_mode import InferenceMode
from keras_cnnkit.backbones.registry import (
    BackboneEntry,
    get_backbone,
    list_backbones,
    register_backbone,
)
from keras_cnnkit.backbones.stages import (
    FeatureInfo,
    backbone_entry,
    backbone_model,
    feature_info,
    find_backbone,
    find_stage_ends,
    stage_numbers,
    stage_of_layers,
)
from keras_cnnkit.backbones.weights import keras_cache_dir, save_backbone_weights

__all__ = [
    "BackboneEntry",
    "FeatureInfo",
    "InferenceMode",
    "backbone_entry",
    "backbone_model",
    "build_classifier",
    "decode_predictions",
    "feature_extractor",
    "feature_info",
    "find_backbone",
    "find_stage_ends",
    "get_backbone",
    "imagenet_classifier",
    "keras_cache_dir",
    "list_backbones",
    "register_backbone",
    "save_backbone_weights",
    "stage_numbers",
    "stage_of_layers",
]
