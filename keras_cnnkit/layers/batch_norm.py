"""A BatchNormalization layer that runs TensorFlow's fused kernel."""

from __future__ import annotations

import keras

from keras_cnnkit._api import serializable


def _multi_replica() -> bool:
    import tensorflow as tf

    return tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1


@serializable
class BatchNorm(keras.layers.BatchNormalization):
    """Batch normalization with a fused kernel on the TensorFlow backend.

    A drop-in replacement for :class:`keras.layers.BatchNormalization`: same
    arguments, same weights (``gamma``, ``beta``, ``moving_mean``,
    ``moving_variance``) under the same names, and the same momentum semantics
    (``moving = moving * momentum + batch * (1 - momentum)``, with the biased batch
    variance), so weights move between the two layers in both directions.

    On the TensorFlow backend, 4-D channels-last input runs the fused
    ``FusedBatchNormV3`` kernel (oneDNN on CPU, cuDNN on GPU) in training and in
    inference. Keras 3's own layer has no fused path and composes the statistics
    from separate ops, which costs a large share of a convolutional network's
    step. Under a mixed precision policy the input stays in the compute dtype
    (``bfloat16``/``float16``) while scale, offset and moving statistics stay
    ``float32``.

    Other backends, other ranks or axes, masks and batch renormalization use
    Keras' own computation.

    Under a ``tf.distribute`` strategy with more than one replica, training-mode
    statistics are always synchronized across replicas (as with
    ``synchronized=True``), so replicas never drift apart.

    As with Keras' layer, ``trainable=False`` puts the layer in inference mode: it
    normalizes with its moving statistics and never updates them (the rule for
    fine-tuning a pretrained network).

    Args:
        axis: The channel axis. The fused path is taken for ``-1`` (or the last
            axis) of 4-D input.
        momentum: Momentum of the moving averages.
        epsilon: Small float added to the variance (the fused kernel uses at
            least ``1.001e-5``).
        **kwargs: Every other argument of :class:`keras.layers.BatchNormalization`.

    Example:
        >>> import numpy as np
        >>> bn = BatchNorm()
        >>> y = bn(np.random.rand(2, 4, 4, 3).astype("float32"), training=True)
        >>> tuple(y.shape)
        (2, 4, 4, 3)
    """

    def _can_fuse(self, inputs, mask) -> bool:
        # ``renorm`` exists from Keras 3.14 on.
        renorm = getattr(self, "renorm", False)
        if keras.backend.backend() != "tensorflow" or mask is not None or renorm:
            return False
        rank = len(inputs.shape)
        return rank == 4 and self.axis in (-1, rank - 1)

    def _moments(self, inputs, mask):
        if keras.backend.backend() == "tensorflow" and not self.synchronized and _multi_replica():
            self.synchronized = True
            try:
                return super()._moments(inputs, mask)
            finally:
                self.synchronized = False
        return super()._moments(inputs, mask)

    def call(self, inputs, training=None, mask=None):
        if not self._can_fuse(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        training = bool(training) and self.trainable
        if training and (self.synchronized or _multi_replica()):
            # Cross-replica statistics: Keras' synchronized computation.
            return super().call(inputs, training=True, mask=mask)

        x = tf.convert_to_tensor(inputs)
        if x.dtype not in (tf.float16, tf.bfloat16, tf.float32):
            x = tf.cast(x, tf.float32)
        channels = x.shape[-1]
        scale = self.gamma if self.scale else tf.ones((channels,), tf.float32)
        offset = self.beta if self.center else tf.zeros((channels,), tf.float32)
        scale = tf.cast(scale, tf.float32)
        offset = tf.cast(offset, tf.float32)
        if training:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, scale, offset, epsilon=self.epsilon, is_training=True, data_format="NHWC"
            )
            # The kernel returns the Bessel-corrected variance; Keras keeps the biased one.
            n = tf.cast(tf.size(x, out_type=tf.int64) // channels, tf.float32)
            variance = variance * tf.maximum(n - 1.0, 0.0) / tf.maximum(n, 1.0)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x,
                scale,
                offset,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon,
                is_training=False,
                data_format="NHWC",
            )
        return tf.cast(y, self.compute_dtype)
