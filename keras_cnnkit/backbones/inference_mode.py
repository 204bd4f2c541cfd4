"""A wrapper that always runs its layer in inference mode."""

from __future__ import annotations

import keras

from keras_cnnkit._api import serializable


@serializable
class InferenceMode(keras.layers.Wrapper):
    """Call the wrapped layer with ``training=False``, whatever the enclosing call says.

    Wrapping a pretrained backbone keeps its BatchNorm layers normalizing with
    their moving statistics, and never updating them, while ``fit`` trains the
    model, also when the backbone is unfrozen and after ``.keras`` save/load.
    Dropout inside the wrapped layer is inactive too. The wrapped layer's
    weights stay trainable or frozen as its ``trainable`` flag says.

    In a Keras 3 functional model, ``backbone(x, training=False)`` alone does not
    give this guarantee: the model's own ``training`` flag replaces the stored
    ``False`` when the model is called for training. This layer takes no
    ``training`` argument, so nothing overrides it.

    Args:
        layer: The layer (typically a keras.applications model) to wrap.
        **kwargs: Standard layer arguments.

    Example:
        >>> import numpy as np, keras
        >>> wrapped = InferenceMode(keras.layers.BatchNormalization())
        >>> x = np.ones((2, 3), "float32")
        >>> model = keras.Sequential([keras.Input((3,)), wrapped])
        >>> model.compile(optimizer="sgd", loss="mse")
        >>> _ = model.fit(x, x, verbose=0)
        >>> wrapped.layer.moving_mean.numpy().tolist()  # never updated
        [0.0, 0.0, 0.0]
    """

    def call(self, inputs):
        return self.layer(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, inputs):
        return self.layer.compute_output_spec(inputs, training=False)

    def get_config(self):
        config = super().get_config()
        layer = keras.saving.serialize_keras_object(self.layer)
        # Building is this layer's job (``build`` builds the wrapped layer).
        layer.pop("build_config", None)
        layer.pop("compile_config", None)
        config["layer"] = layer
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(
            config["layer"], custom_objects=custom_objects
        )
        return cls(**config)
