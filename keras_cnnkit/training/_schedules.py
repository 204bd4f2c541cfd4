"""Learning-rate schedules of keras_cnnkit."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import SpecError


@serializable
class PiecewiseLinear(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate that moves linearly between ``(step, value)`` knots.

    Before the first knot it is the first value, after the last the last value.

    Args:
        steps: Knot steps, increasing.
        values: Learning rate at each knot.

    Raises:
        SpecError: If the knots are not increasing or the lists differ in length.

    Example:
        >>> schedule = PiecewiseLinear([0, 10, 100], [0.2, 1.0, 0.07])
        >>> round(float(schedule(5)), 3), round(float(schedule(100)), 3)
        (0.6, 0.07)
    """

    def __init__(self, steps: Sequence[float], values: Sequence[float]):
        self.steps = [float(s) for s in steps]
        self.values = [float(v) for v in values]
        if len(self.steps) != len(self.values) or not self.steps:
            raise SpecError(f"steps and values must be non-empty and match: {steps!r}, {values!r}")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:])):
            raise SpecError(f"knot steps must increase, got {steps!r}")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = ops.convert_to_tensor(self.values[0], "float32")
        for (s0, v0), (s1, v1) in zip(
            zip(self.steps, self.values), zip(self.steps[1:], self.values[1:])
        ):
            fraction = ops.clip((step - s0) / (s1 - s0), 0.0, 1.0)
            rate = ops.where(step > s0, v0 + (v1 - v0) * fraction, rate)
        return rate

    def get_config(self):
        return {"steps": list(self.steps), "values": list(self.values)}
