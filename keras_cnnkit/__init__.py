"""keras_cnnkit: convolutional image models for Keras 3."""

from keras_cnnkit._version import __version__
from keras_cnnkit import errors, layers

__all__ = ["__version__", "errors", "layers"]
