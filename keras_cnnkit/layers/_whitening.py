"""A first convolution that whitens image patches, fitted to training images."""

from __future__ import annotations

import keras
import numpy as np

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import DataError, SpecError


def patch_whitening_kernel(images, kernel_size: int = 2, epsilon: float = 5e-4) -> np.ndarray:
    """The kernel of a convolution that whitens the ``kernel_size`` patches of ``images``.

    The patch covariance ``C = V diag(lambda) V^T`` is estimated from every
    ``kernel_size x kernel_size`` patch (stride 1, no padding, no centring); filter
    ``i`` is eigenvector ``i`` divided by ``sqrt(lambda_i + epsilon)``, largest
    eigenvalue first, followed by the same filters negated (so a ReLU-like
    activation keeps both signs). Applied to the same patches, the first half of
    the output channels has a covariance close to the identity (exactly
    ``lambda / (lambda + epsilon)`` on the diagonal).

    Args:
        images: ``(n, height, width, channels)`` images, already normalized as the
            layer will see them.
        kernel_size: Patch size.
        epsilon: Added to every eigenvalue (bounds the gain of flat directions).

    Returns:
        A float32 kernel of shape ``(kernel_size, kernel_size, channels,
        2 * kernel_size**2 * channels)``.

    Raises:
        DataError: If ``images`` is not a 4-D array at least ``kernel_size`` high
            and wide.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> patch_whitening_kernel(rng.normal(size=(8, 6, 6, 3)), 2).shape
        (2, 2, 3, 24)
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or x.shape[1] < kernel_size or x.shape[2] < kernel_size or not len(x):
        raise DataError(
            f"whitening needs (n, height, width, channels) images of at least "
            f"{kernel_size}x{kernel_size}, got shape {x.shape}"
        )
    k, c = int(kernel_size), x.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
    # (n, h', w', c, k, k) -> one row per patch in the kernel's (k, k, c) order
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * c)
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    filters = eigenvectors / np.sqrt(np.maximum(eigenvalues, 0.0) + epsilon)
    kernel = np.concatenate([filters, -filters], axis=1)
    return kernel.reshape(k, k, c, 2 * k * k * c).astype(np.float32)


@serializable
class PatchWhitening(keras.layers.Layer):
    """A ``valid`` convolution whose frozen kernel whitens image patches, plus a bias.

    The kernel is not learnt: :meth:`adapt` sets it from training images with
    :func:`patch_whitening_kernel` (like ``keras.layers.Normalization.adapt``), and
    it is saved with the model's weights. The bias is trainable. It is the first
    layer of :func:`keras_cnnkit.models.cifar10_airbench`: decorrelated inputs let
    a short schedule learn fast.

    Args:
        kernel_size: Patch size; the layer has ``2 * kernel_size**2 * channels``
            output channels.
        epsilon: See :func:`patch_whitening_kernel`.
        **kwargs: Standard layer arguments.

    Example:
        >>> layer = PatchWhitening(2)
        >>> rng = np.random.default_rng(0)
        >>> images = rng.normal(size=(4, 8, 8, 3)).astype("float32")
        >>> layer.adapt(images)
        >>> tuple(layer(images).shape)
        (4, 7, 7, 24)
    """

    def __init__(self, kernel_size: int = 2, epsilon: float = 5e-4, **kwargs):
        super().__init__(**kwargs)
        if int(kernel_size) < 1:
            raise SpecError(f"kernel_size must be >= 1, got {kernel_size!r}")
        self.kernel_size = int(kernel_size)
        self.epsilon = float(epsilon)
        self.conv = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.filters = 2 * self.kernel_size**2 * channels
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.kernel_size,
            padding="valid",
            use_bias=False,
            kernel_initializer="zeros",  # zero until adapted
            trainable=False,
            name="conv",
            dtype=self.dtype_policy,
        )
        self.conv.build(input_shape)
        self.bias = self.add_weight(
            name="bias", shape=(self.filters,), initializer="zeros", trainable=True
        )

    def adapt(self, images) -> None:
        """Set the kernel from ``images`` (normalized as the layer sees them).

        Args:
            images: ``(n, height, width, channels)`` images.
        """
        images = np.asarray(images)
        if not self.built:
            self.build((None, *images.shape[1:]))
        kernel = patch_whitening_kernel(images, self.kernel_size, self.epsilon)
        self.conv.kernel.assign(kernel)

    def call(self, inputs):
        return self.conv(inputs) + keras.ops.cast(self.bias, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        channels = 2 * self.kernel_size**2 * int(input_shape[-1])
        shrink = self.kernel_size - 1
        h, w = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            None if h is None else h - shrink,
            None if w is None else w - shrink,
            channels,
        )

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, epsilon=self.epsilon)
        return config
