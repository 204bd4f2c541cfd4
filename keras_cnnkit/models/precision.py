"""Change the numeric precision of a built model."""

from __future__ import annotations

import keras

from keras_cnnkit.hardware import resolve_precision


def cast_precision(model: keras.Model, precision: str = "float32") -> keras.Model:
    """Return a copy of ``model`` whose layers compute in ``precision``, with the same weights.

    A model trained in mixed bfloat16 on a CPU with AMX runs faster in float32 on a
    CPU without it (and the reverse). Variables of mixed-precision models are
    float32 already, so the weights carry over unchanged; layers that always compute
    in float32 (such as the class scores of
    :class:`~keras_cnnkit.layers.ClassifierHead`) keep doing so.

    Args:
        model: A functional model (for example one built by
            :func:`~keras_cnnkit.conv_stack` or loaded from ``.keras``).
        precision: ``"auto"`` or a dtype policy name (see
            :func:`~keras_cnnkit.resolve_precision`).

    Returns:
        The new model.

    Raises:
        PrecisionError: If ``precision`` is unknown.

    Example:
        >>> from keras_cnnkit import conv_stack
        >>> model = conv_stack({"stages": [4]}, input_shape=(8, 8, 3), dtype="mixed_bfloat16")
        >>> cast_precision(model, "float32").get_layer("stage1_conv1").compute_dtype
        'float32'
    """
    policy = resolve_precision(precision)

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if layer.dtype_policy.name != "float32" or policy != "float32":
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
