"""Test-time augmentation recorded in the model: flips and one-pixel shifts."""

from __future__ import annotations

import keras
from keras import ops

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import SpecError

#: Test-time augmentation levels: the views each averages.
TTA_LEVELS = {0: "the image alone", 1: "image and mirror image", 2: "mirror, and shifts by 1 px"}


@serializable
class TestTimeAugmentation(keras.layers.Wrapper):
    """Run a classifier on several views of each image at inference and average them.

    In training (``training=True``) the wrapped classifier sees the images as they
    are. At inference, level 1 averages the image and its mirror image; level 2
    (airbench's choice) gives the mirror pair weight 1/2 and the mirror pairs of the
    image shifted by one pixel up-left and down-right (reflected borders) 1/4 each.
    The views' log-probabilities are averaged (for a softmax classifier the same
    ranking as averaging logits) and returned as probabilities, so ``predict``,
    ``evaluate`` and ``cnnkit evaluate`` apply the augmentation of a saved model
    with no extra step.

    Args:
        layer: The classifier (a model or layer returning class probabilities).
        level: One of :data:`TTA_LEVELS`.
        **kwargs: Standard layer arguments.

    Raises:
        SpecError: On an unknown level.

    Example:
        >>> import numpy as np
        >>> inner = keras.Sequential(
        ...     [keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")]
        ... )
        >>> tta = TestTimeAugmentation(inner, level=2)
        >>> tuple(tta(np.zeros((2, 8, 8, 3), "float32")).shape)
        (2, 3)
    """

    def __init__(self, layer, level: int = 2, **kwargs):
        super().__init__(layer, **kwargs)
        if level not in TTA_LEVELS:
            raise SpecError(
                f"test-time augmentation level must be one of {list(TTA_LEVELS)}, got {level!r}"
            )
        self.level = int(level)

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def _mirror(self, images, weight):
        views = [(images, weight)]
        if self.level >= 1:
            views = [(images, weight / 2), (ops.flip(images, axis=2), weight / 2)]
        return views

    def views(self, images):
        """The ``(view, weight)`` pairs averaged at inference."""
        if self.level < 2:
            return self._mirror(images, 1.0)
        height, width = images.shape[1], images.shape[2]
        padded = ops.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
        up_left = padded[:, :height, :width, :]
        down_right = padded[:, 2 : height + 2, 2 : width + 2, :]
        return (
            self._mirror(images, 0.5) + self._mirror(up_left, 0.25) + self._mirror(down_right, 0.25)
        )

    def call(self, inputs, training=None):
        images = ops.cast(inputs, "float32")
        if training or self.level == 0:
            return self.layer(images, training=training)
        total = None
        for view, weight in self.views(images):
            probs = ops.cast(self.layer(view, training=False), "float32")
            log_probs = ops.log(ops.maximum(probs, 1e-30)) * weight
            total = log_probs if total is None else total + log_probs
        return ops.softmax(total, axis=-1)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(level=self.level)
        return config
