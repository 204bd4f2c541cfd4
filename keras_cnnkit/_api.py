"""Registration of public, serializable keras_cnnkit objects."""

from __future__ import annotations

from typing import TypeVar

import keras

T = TypeVar("T")

PACKAGE = "keras_cnnkit"


def serializable(cls: T) -> T:
    """Register ``cls`` with Keras under the ``keras_cnnkit`` package.

    A registered class is found by ``keras.saving.load_model`` without
    ``custom_objects``; its registered name (``keras_cnnkit>ClassName``) is part of
    the on-disk format and must never change.

    Args:
        cls: A Keras layer, model, loss or schedule class.

    Returns:
        The same class, registered.
    """
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
