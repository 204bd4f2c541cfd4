"""Network builders: the declarative conv stack and the CIFAR-10 networks."""

from keras_cnnkit.models._flops import forward_flops
from keras_cnnkit.models.cifar10 import (
    CLASSIC_SPEC,
    FAST_SPEC,
    cifar10_airbench,
    cifar10_classic,
    cifar10_fast,
)
from keras_cnnkit.models.conv_stack import conv_stack
from keras_cnnkit.models.head import classifier_head, reset_classifier
from keras_cnnkit.models.precision import cast_precision, compute_dtypes
from keras_cnnkit.models.spec import ConvStackSpec, HeadSpec, StageSpec, validate_spec

__all__ = [
    "CLASSIC_SPEC",
    "ConvStackSpec",
    "FAST_SPEC",
    "HeadSpec",
    "StageSpec",
    "cast_precision",
    "cifar10_airbench",
    "cifar10_classic",
    "cifar10_fast",
    "classifier_head",
    "compute_dtypes",
    "conv_stack",
    "forward_flops",
    "reset_classifier",
    "validate_spec",
]
