"""Deprecated: moved to :mod:`keras_cnnkit.data` (names resolve here with a warning)."""

from keras_cnnkit.data._moved import moved
from keras_cnnkit.preprocessing import __all__ as _NAMES

__getattr__ = moved(__name__, _NAMES)
