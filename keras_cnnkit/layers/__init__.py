"""Keras layers of keras_cnnkit: each registered, serializable and ``.keras`` round-trippable."""

from keras_cnnkit.layers._initializers import PartialIdentity
from keras_cnnkit.layers._tta import TTA_LEVELS, TestTimeAugmentation
from keras_cnnkit.layers._whitening import PatchWhitening, patch_whitening_kernel
from keras_cnnkit.layers.batch_norm import BatchNorm
from keras_cnnkit.layers.classifier_head import POOLINGS, ClassifierHead
from keras_cnnkit.layers.conv_block import ConvBlock
from keras_cnnkit.layers.normalization import NORMALIZATIONS, make_normalization
from keras_cnnkit.layers.normalize import PRESETS, Normalize
from keras_cnnkit.layers.residual_block import ResidualBlock

__all__ = [
    "BatchNorm",
    "ClassifierHead",
    "ConvBlock",
    "NORMALIZATIONS",
    "Normalize",
    "POOLINGS",
    "PRESETS",
    "PartialIdentity",
    "PatchWhitening",
    "ResidualBlock",
    "TTA_LEVELS",
    "TestTimeAugmentation",
    "make_normalization",
    "patch_whitening_kernel",
]
