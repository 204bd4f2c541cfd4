"""Swap the classifier head of a built model (timm's ``reset_classifier``)."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers import ClassifierHead
from keras_cnnkit.layers.classifier_head import check_num_classes


def classifier_head(model: keras.Model) -> ClassifierHead:
    """The :class:`~keras_cnnkit.layers.ClassifierHead` of a model.

    Args:
        model: A functional model with exactly one ``ClassifierHead`` layer.

    Returns:
        The head layer.

    Raises:
        SpecError: If ``model`` has no such layer or several.

    Example:
        >>> from keras_cnnkit import conv_stack
        >>> classifier_head(conv_stack({"stages": [4]}, input_shape=(8, 8, 3))).num_classes
        10
    """
    heads = [la for la in getattr(model, "layers", []) if isinstance(la, ClassifierHead)]
    if len(heads) != 1:
        what = "no ClassifierHead" if not heads else f"{len(heads)} ClassifierHead layers"
        raise SpecError(
            f"model {getattr(model, 'name', model)!r} has {what}; a head can be reset on "
            "models from conv_stack, the CIFAR-10 builders and build_classifier"
        )
    return heads[0]


def reset_classifier(
    model: keras.Model,
    num_classes: int,
    *,
    pooling: str | None = None,
    hidden_units: Sequence[int] | None = None,
    dropout: float | None = None,
    output_activation: str | None = "keep",
    name: str | None = None,
) -> keras.Model:
    """Return ``model`` with a new classifier head for ``num_classes`` classes.

    Works on every model with a :class:`~keras_cnnkit.layers.ClassifierHead`:
    :func:`~keras_cnnkit.conv_stack`, :func:`~keras_cnnkit.cifar10_fast`,
    :func:`~keras_cnnkit.cifar10_classic` and
    :func:`~keras_cnnkit.backbones.build_classifier`, trained or not, also after
    ``.keras`` save/load. The new model takes the same inputs and reuses every
    layer before the head, with its weights and ``trainable`` flags (a frozen
    backbone stays frozen); the new head is freshly initialized. Like Keras'
    transfer-learning recipe, the layers are shared with ``model``: training
    the new model changes them in both (``keras.models.clone_model`` and
    ``set_weights`` first for an independent copy).

    ``num_classes=0`` gives the pooled features instead of class scores.
    Arguments left at ``None`` keep the old head's settings.

    Args:
        model: The model whose head is replaced.
        num_classes: Number of classes of the new head; 0 for pooled features.
        pooling: ``"flatten"``, ``"avg"``, ``"max"`` or ``"avgmax"``.
        hidden_units: Units of hidden Dense layers in the new head.
        dropout: Dropout rate of the new head.
        output_activation: ``"softmax"``, ``"sigmoid"``, ``None`` (logits) or
            ``"keep"`` (the old head's, the default).
        name: Name of the new model; the old one's by default.

    Returns:
        A new functional ``keras.Model`` (uncompiled).

    Raises:
        SpecError: If ``model`` has no ``ClassifierHead`` or an argument is invalid.

    Example:
        >>> from keras_cnnkit import conv_stack
        >>> model = conv_stack({"stages": [8, 16]}, input_shape=(32, 32, 3), num_classes=10)
        >>> reset_classifier(model, 3).output_shape
        (None, 3)
        >>> reset_classifier(model, 0).output_shape  # pooled features
        (None, 16)
    """
    head = classifier_head(model)
    check_num_classes(num_classes)
    config = head.get_config()
    config["num_classes"] = num_classes
    if pooling is not None:
        config["pooling"] = pooling
    if hidden_units is not None:
        config["hidden_units"] = list(hidden_units)
    if dropout is not None:
        config["dropout"] = dropout
    if output_activation != "keep":
        config["output_activation"] = output_activation
    config["dtype"] = head.dtype_policy
    config["kernel_regularizer"] = head.kernel_regularizer
    new_head = ClassifierHead(**config)
    features = head._inbound_nodes[0].input_tensors[0]
    return keras.Model(model.inputs, new_head(features), name=name or model.name)
