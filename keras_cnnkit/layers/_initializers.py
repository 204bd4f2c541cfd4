"""Kernel initializers of keras_cnnkit."""

from __future__ import annotations

import keras
from keras import ops

from keras_cnnkit._api import serializable


@serializable
class PartialIdentity(keras.initializers.Initializer):
    """A conv kernel whose first ``channels_in`` filters pass their input channel through.

    Output channel ``i < channels_in`` starts as the identity of input channel ``i``
    (a one at the kernel's centre, zeros elsewhere, PyTorch's ``dirac_``); the
    other filters are uniform with variance ``1 / (3 * fan_in)`` (PyTorch's default
    convolution initialization). A deep stack of such convolutions starts close to
    passing its input through, which short schedules train well.

    Example:
        >>> kernel = PartialIdentity()((3, 3, 2, 4))
        >>> float(kernel[1, 1, 0, 0]), float(kernel[0, 0, 0, 0])
        (1.0, 0.0)
    """

    def __init__(self, seed: int | None = None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        base = keras.initializers.VarianceScaling(
            1.0 / 3.0, mode="fan_in", distribution="uniform", seed=self.seed
        )(shape, dtype=dtype)
        if len(shape) != 4:
            return base
        kh, kw, cin, cout = shape
        eye = ops.eye(cin, cout, dtype=dtype or "float32")
        centre = ops.reshape(
            ops.one_hot(ops.convert_to_tensor([(kh // 2) * kw + kw // 2]), kh * kw), (kh, kw, 1, 1)
        )
        dirac = ops.cast(centre, eye.dtype) * ops.reshape(eye, (1, 1, cin, cout))
        keep = ops.reshape(ops.arange(cout) >= cin, (1, 1, 1, cout))
        return ops.where(keep, base, dirac)

    def get_config(self):
        return {"seed": self.seed}
