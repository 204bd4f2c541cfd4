"""Losses used by the training recipes."""

from __future__ import annotations

import keras
from keras import ops

from keras_cnnkit._api import serializable

__all__ = [
    "SparseCategoricalCrossentropy",
]


@serializable
class SparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy for integer labels, with label smoothing.

    Keras' own ``SparseCategoricalCrossentropy`` has no ``label_smoothing``; this
    loss one-hot encodes the labels inside the graph, so datasets keep compact
    integer labels.

    Args:
        label_smoothing: Mass moved from the true class to all classes (0 disables it).
        from_logits: Whether predictions are logits rather than probabilities.
        name: Name of the loss.
        **kwargs: Other :class:`keras.losses.Loss` arguments (``reduction``).

    Example:
        >>> import numpy as np
        >>> loss = SparseCategoricalCrossentropy(label_smoothing=0.1)
        >>> float(loss(np.array([1]), np.array([[0.1, 0.9]]))) > 0
        True
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        from_logits: bool = False,
        name: str = "sparse_categorical_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        num_classes = ops.shape(y_pred)[-1]
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), num_classes)
        return keras.losses.categorical_crossentropy(
            ops.cast(labels, y_pred.dtype),
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing, from_logits=self.from_logits)
        return config
