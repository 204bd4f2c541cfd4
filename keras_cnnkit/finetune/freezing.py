"""Freezing and unfreezing the backbone of a transfer-learning model."""

from __future__ import annotations

import keras

from keras_cnnkit.backbones import backbone_model, stage_of_layers
from keras_cnnkit.errors import SpecError


def freeze(model: keras.Model) -> keras.Model:
    """Make the backbone inside ``model`` non-trainable (the head stays trainable).

    Compile the model again afterwards: Keras reads ``trainable`` at compile time.

    Args:
        model: A model from :func:`keras_cnnkit.backbones.build_classifier`.

    Returns:
        ``model``.

    Raises:
        SpecError: If ``model`` holds no registered backbone.

    Example:
        >>> from keras_cnnkit.backbones import build_classifier
        >>> m = build_classifier("vgg16", 3, input_shape=(32, 32, 3), weights=None,
        ...                      freeze_backbone=False)
        >>> len(freeze(m).trainable_weights)
        2
    """
    backbone_model(model).trainable = False
    return model


def unfreeze(
    model: keras.Model,
    last_n_stages: int | None = None,
    *,
    from_layer: str | None = None,
) -> keras.Model:
    """Make all or the deepest part of the backbone inside ``model`` trainable.

    BatchNorm layers keep normalizing with their moving statistics, without
    updating them, as long as the model was built with ``train_batchnorm=False``
    (the default): the backbone is called with ``training=False``. Their scale
    and offset train with their stage. Compile the model again afterwards.

    Args:
        model: A model from :func:`keras_cnnkit.backbones.build_classifier`.
        last_n_stages: Unfreeze only the last ``n`` stages of the backbone
            (see :func:`keras_cnnkit.backbones.stage_of_layers`).
        from_layer: Unfreeze the backbone layers from this one (in the
            backbone's layer order) to the end.

    Returns:
        ``model``.

    Raises:
        SpecError: If both options are given, ``last_n_stages`` is out of range
            or ``from_layer`` is not a backbone layer.

    Example:
        >>> from keras_cnnkit.backbones import build_classifier
        >>> m = build_classifier("vgg16", 3, input_shape=(32, 32, 3), weights=None)
        >>> len(unfreeze(m, last_n_stages=1).trainable_weights)  # 3 convs + head
        8
    """
    if last_n_stages is not None and from_layer is not None:
        raise SpecError("pass last_n_stages or from_layer, not both")
    backbone = backbone_model(model)
    # Each layer's own flag decides (``Model.trainable = True`` leaves the flags of
    # layers frozen by an earlier partial unfreeze untouched), so set every one.
    backbone.trainable = True
    if last_n_stages is not None:
        stages = stage_of_layers(backbone)
        n = max(stages.values())
        if not isinstance(last_n_stages, int) or not 1 <= last_n_stages <= n:
            raise SpecError(
                f"last_n_stages must be an integer in 1..{n} for backbone {backbone.name!r}, "
                f"got {last_n_stages!r}"
            )
        first = n - last_n_stages + 1
        for layer in backbone.layers:
            layer.trainable = stages.get(layer.name, n) >= first
    elif from_layer is not None:
        names = [layer.name for layer in backbone.layers]
        if from_layer not in names:
            raise SpecError(
                f"from_layer {from_layer!r} is not a layer of backbone {backbone.name!r}"
            )
        start = names.index(from_layer)
        for i, layer in enumerate(backbone.layers):
            layer.trainable = i >= start
    else:
        for layer in backbone.layers:
            layer.trainable = True
    return model


def batchnorm_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The BatchNormalization layers of the backbone inside ``model``.

    Args:
        model: A keras_cnnkit transfer-learning model, or a backbone.

    Returns:
        The layers, in the backbone's order.

    Raises:
        SpecError: If ``model`` holds no registered backbone.
    """
    backbone = backbone_model(model)
    return [la for la in backbone.layers if isinstance(la, keras.layers.BatchNormalization)]
