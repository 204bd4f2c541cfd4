"""Change the numeric precision of a built model."""

from __future__ import annotations

import keras

from keras_cnnkit.hardware import resolve_precision


def cast_precision(model: keras.Model, precision: str = "float32") -> keras.Model:
    """Return a copy of ``model`` whose layers compute in ``precision``, with the same weights.

    A model trained in mixed bfloat16 on a CPU with AMX runs faster in float32 on a
    CPU without it (and the reverse), and TFLite runs float32 graphs. Variables of
    mixed-precision models are float32 already, so the weights carry over
    unchanged; layers that always compute in float32 (such as the class scores of
    :class:`~keras_cnnkit.layers.ClassifierHead`) keep doing so. Every layer is
    cast, also inside nested models (the backbone of
    :func:`~keras_cnnkit.backbones.build_classifier`).

    Args:
        model: A model whose classes are registered with Keras (every model built
            by keras_cnnkit, or loaded from ``.keras``).
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
    config = keras.saving.serialize_keras_object(model)
    config = _with_policy(config, policy)
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def compute_dtypes(model: keras.Model) -> set[str]:
    """The compute dtypes of every layer in ``model``, nested models included.

    Args:
        model: A Keras model.

    Returns:
        The set of dtype names (``{"float32"}`` for a float32 model).

    Example:
        >>> from keras_cnnkit import conv_stack
        >>> sorted(compute_dtypes(conv_stack({"stages": [4]}, input_shape=(8, 8, 3),
        ...                                  dtype="mixed_float16")))
        ['float16', 'float32']
    """
    found = set()
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        found.add(keras.backend.standardize_dtype(layer.compute_dtype))
    return found


def _with_policy(config, policy: str):
    """Replace every float dtype policy in a serialized object by ``policy``."""
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(
            config.get("config"), dict
        ):
            return {**config, "config": {**config["config"], "name": policy}}
        return {key: _with_policy(value, policy) for key, value in config.items()}
    if isinstance(config, list):
        return [_with_policy(value, policy) for value in config]
    return config
