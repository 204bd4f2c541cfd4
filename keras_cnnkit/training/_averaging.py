"""Lookahead-style weight averaging during training, as a Keras callback."""

from __future__ import annotations

import keras
from keras import ops

from keras_cnnkit._api import serializable
from keras_cnnkit.errors import SpecError


@serializable
class LookaheadAverage(keras.callbacks.Callback):
    """Every ``every`` steps, pull the weights toward a running average and reset them to it.

    At step ``s`` of ``total_steps`` (a multiple of ``every``) the average moves
    toward the current weights, ``avg = d * avg + (1 - d) * w`` with
    ``d = decay**every * (s / total_steps)**power``, and the weights become the
    average (airbench's Lookahead state). Early in training ``d`` is near 0 and
    the weights run free; towards the end the average smooths the last steps. At
    the end of training the weights are the average. Every floating-point weight
    of the model is averaged, the batch-norm statistics included.

    Args:
        total_steps: Steps of the whole run (sets the decay's ramp).
        every: Steps between two updates.
        decay: Per-step decay at the end of training.
        power: Exponent of the decay's ramp.

    Raises:
        SpecError: If ``every`` or ``total_steps`` is not positive.

    Example:
        >>> callback = LookaheadAverage(total_steps=100)
        >>> round(callback.decay_at(100), 4), callback.decay_at(0)
        (0.7738, 0.0)
    """

    def __init__(self, total_steps: int, every: int = 5, decay: float = 0.95, power: float = 3.0):
        super().__init__()
        if int(every) < 1 or int(total_steps) < 1:
            raise SpecError(
                f"every and total_steps must be >= 1, got every={every!r}, "
                f"total_steps={total_steps!r}"
            )
        self.total_steps = int(total_steps)
        self.every = int(every)
        self.decay = float(decay)
        self.power = float(power)
        self.step = 0
        self._average = None

    def decay_at(self, step: int) -> float:
        """The decay ``d`` used at training step ``step``."""
        fraction = min(1.0, step / self.total_steps)
        return self.decay**self.every * fraction**self.power

    def _variables(self):
        return [v for v in self.model.weights if "float" in str(v.dtype)]

    def _sync(self) -> None:
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:  # JAX keeps the state outside the variables during fit
            sync()

    def on_train_begin(self, logs=None):
        self._average = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._average is None:
            self._sync()
            self._average = [ops.copy(v.value) for v in self._variables()]
            params = self.params or {}
            steps = params.get("steps")
            if steps and epoch:
                self.step = epoch * int(steps)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.step % self.every == 0:
            self.update(self.decay_at(self.step))

    def update(self, decay: float) -> None:
        """Move the average toward the weights with ``decay``; set the weights to it."""
        self._sync()
        variables = self._variables()
        if self._average is None:
            self._average = [ops.copy(v.value) for v in variables]
        for i, variable in enumerate(variables):
            # Copies: JAX's training step takes over (donates) the variables' buffers.
            average = self._average[i] * decay + ops.convert_to_tensor(variable.value) * (
                1.0 - decay
            )
            self._average[i] = average
            variable.assign(ops.copy(average))

    def on_train_end(self, logs=None):
        if self._average is not None:
            self.update(1.0)

    def get_config(self):
        return {
            "total_steps": self.total_steps,
            "every": self.every,
            "decay": self.decay,
            "power": self.power,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
