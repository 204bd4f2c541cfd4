"""Transfer-learning models built on a registered backbone: classifiers and feature extractors."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import keras

from keras_cnnkit.backbones.inference_mode import InferenceMode
from keras_cnnkit.backbones.registry import BackboneEntry, lookup
from keras_cnnkit.backbones.stages import check_stage_layers
from keras_cnnkit.backbones.weights import (
    build_backbone_model,
    check_input_shape,
    load_backbone_weights,
    quiet_weight_loading,
    weight_path,
)
from keras_cnnkit.errors import SpecError, StorageError
from keras_cnnkit.layers import ClassifierHead, Normalize

Weights = str | os.PathLike | None


def _resolve_shapes(entry: BackboneEntry, input_shape, image_size):
    """Return (model input shape, backbone input shape, whether to resize)."""
    if image_size is not None:
        try:
            image_size = tuple(int(s) for s in image_size)
        except (TypeError, ValueError):
            raise SpecError(f"image_size must be (height, width), got {image_size!r}") from None
        if len(image_size) != 2 or min(image_size) < 1:
            raise SpecError(f"image_size must be (height, width), got {image_size!r}")
    if input_shape is None:
        side = entry.default_size
        input_shape = (*(image_size or (side, side)), 3)
    try:
        input_shape = tuple(None if s is None else int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise SpecError(
            f"input_shape must be (height, width, channels), got {input_shape!r}"
        ) from None
    if len(input_shape) != 3:
        raise SpecError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    if image_size is None:
        return input_shape, check_input_shape(entry, input_shape), False
    backbone_shape = check_input_shape(entry, (*image_size, input_shape[2]))
    return input_shape, backbone_shape, input_shape[:2] != image_size


def _backbone_and_file(entry, backbone_shape, weights, backbone_kwargs):
    """Build the backbone; return it and a file that may hold a whole model's weights."""
    if weights is None or weights == "imagenet":
        return build_backbone_model(entry, backbone_shape, weights, backbone_kwargs), None
    path = weight_path(weights)
    backbone = build_backbone_model(entry, backbone_shape, None, backbone_kwargs)
    try:
        load_backbone_weights(backbone, path, entry=entry)
    except StorageError as exc:
        return backbone, (path, exc)
    return backbone, None


def _preprocess(inputs, entry, backbone_shape, resize):
    x = inputs
    if resize:
        x = keras.layers.Resizing(backbone_shape[0], backbone_shape[1], name="resize")(x)
    return Normalize.from_preset(entry.preprocessing, name="preprocess")(x)


def build_classifier(
    backbone: str | BackboneEntry,
    num_classes: int,
    input_shape: Sequence[int | None] | None = None,
    *,
    image_size: Sequence[int] | None = None,
    weights: Weights = "imagenet",
    pooling: str = "avg",
    dropout: float = 0.0,
    hidden_units: Sequence[int] = (),
    freeze_backbone: bool = True,
    train_batchnorm: bool = False,
    output_activation: str | None = "softmax",
    backbone_kwargs: Mapping | None = None,
    name: str | None = None,
) -> keras.Model:
    """Build a transfer-learning classifier that takes raw ``uint8`` images.

    The functional model is: ``images`` (uint8) → optional ``resize`` →
    ``preprocess`` (a :class:`~keras_cnnkit.layers.Normalize` with the preset the
    backbone's weights expect) → the keras.applications backbone (without its
    top, named after its registry entry) → ``head`` (a
    :class:`~keras_cnnkit.layers.ClassifierHead`). Every part is a serializable
    layer, so a ``.keras`` file holds the preprocessing too.

    The backbone runs inside an :class:`InferenceMode` wrapper (always
    ``training=False``): its BatchNorm layers normalize with their moving
    statistics and never update them, even when the backbone is unfrozen and
    after save/load (the Keras transfer-learning rule). Pass
    ``train_batchnorm=True`` to call the backbone directly, so that ``fit``
    updates them instead.

    Args:
        backbone: A registry name (see :func:`list_backbones`) or entry.
        num_classes: Number of classes.
        input_shape: Shape of the images the model takes, ``(height, width, 3)``;
            the backbone's default size when ``None``. ``None`` sides accept any
            size (then set ``image_size``, or the backbone runs at that size).
        image_size: ``(height, width)`` the images are resized to inside the
            model before the backbone; no resizing when ``None``.
        weights: ``"imagenet"`` (downloaded once by keras.applications into
            ``$KERAS_HOME/models``), ``None`` (random), or the path of a
            ``.weights.h5``/``.h5`` file holding either the backbone's weights
            (see :func:`save_backbone_weights`, or a keras.applications
            ``..._notop.h5`` file) or a whole classifier's weights.
        pooling: ``"avg"``, ``"max"``, ``"avgmax"`` or ``"flatten"``.
        dropout: Dropout rate before the last Dense layer(s).
        hidden_units: Units of hidden Dense layers in the head.
        freeze_backbone: Make the backbone non-trainable (train the head only).
        train_batchnorm: Call the backbone without ``training=False``, so that
            its BatchNorm layers use and update batch statistics when trainable.
        output_activation: ``"softmax"``, ``None`` (logits) or ``"sigmoid"``.
        backbone_kwargs: Extra arguments of the keras.applications constructor
            (for example ``{"alpha": 0.35}`` for MobileNetV2).
        name: Model name; ``"<backbone>_classifier"`` by default.

    Returns:
        An uncompiled functional ``keras.Model`` mapping ``uint8`` images to
        ``(batch, num_classes)`` scores.

    Raises:
        SpecError: On an unknown backbone (the message lists close names), an
            input below the backbone's minimum size, or a bad argument.
        StorageError: When the ImageNet weights cannot be downloaded (the
            message says how to pass a local file) or a weights file does not
            match the architecture.

    Example:
        >>> model = build_classifier("resnet50", 5, input_shape=(32, 32, 3), weights=None)
        >>> model.output_shape
        (None, 5)
    """
    entry = lookup(backbone)
    input_shape, backbone_shape, resize = _resolve_shapes(entry, input_shape, image_size)
    head = ClassifierHead(
        num_classes,
        pooling=pooling,
        hidden_units=hidden_units,
        dropout=dropout,
        output_activation=output_activation,
        name="head",
    )
    net, pending = _backbone_and_file(entry, backbone_shape, weights, backbone_kwargs)
    inputs = keras.Input(input_shape, dtype="uint8", name="images")
    x = _preprocess(inputs, entry, backbone_shape, resize)
    x = net(x) if train_batchnorm else InferenceMode(net, name=f"{entry.name}_inference")(x)
    model = keras.Model(inputs, head(x), name=name or f"{entry.name}_classifier")
    if pending is not None:
        path, backbone_error = pending
        try:
            with quiet_weight_loading():
                model.load_weights(str(path))
        except Exception as exc:
            raise StorageError(
                f"weights file {str(path)!r} matches neither backbone {entry.name!r} nor a "
                f"{entry.name!r} classifier with {num_classes} classes, pooling={pooling!r}, "
                f"hidden_units={tuple(hidden_units)}: as a backbone: {backbone_error}; "
                f"as a classifier: {str(exc).strip().splitlines()[0][:300]}"
            ) from exc
    net.trainable = not freeze_backbone
    return model


def feature_extractor(
    backbone: str | BackboneEntry,
    stages: Sequence[int | str] | None = None,
    input_shape: Sequence[int | None] | None = None,
    *,
    image_size: Sequence[int] | None = None,
    weights: Weights = "imagenet",
    backbone_kwargs: Mapping | None = None,
    name: str | None = None,
) -> keras.Model:
    """Build a model returning the multi-scale feature maps of a backbone.

    Like timm's ``features_only``: raw ``uint8`` images in, a dict
    ``{"stage<k>": feature map}`` out, one per requested stage, shallow to deep.
    The preprocessing the weights expect is inside the model, and the backbone
    runs in inference mode (inside an :class:`InferenceMode` wrapper).

    Args:
        backbone: A registry name or entry.
        stages: Stage numbers (1 = shallowest, negative counts from the end) or
            stage-end layer names; every stage of the registry entry by default.
        input_shape: Shape of the images the model takes; the backbone's default
            size when ``None``.
        image_size: ``(height, width)`` the images are resized to inside the model.
        weights: ``"imagenet"``, ``None`` or a local weights file, as in
            :func:`build_classifier`.
        backbone_kwargs: Extra arguments of the keras.applications constructor.
        name: Model name; ``"<backbone>_features"`` by default.

    Returns:
        A functional ``keras.Model`` with dict outputs.

    Raises:
        SpecError: On an unknown backbone or stage, or an input below the
            backbone's minimum size.
        StorageError: When the weights cannot be fetched or loaded.

    Example:
        >>> m = feature_extractor("resnet50", stages=(2, 5), input_shape=(64, 64, 3),
        ...                       weights=None)
        >>> {k: tuple(v.shape[1:]) for k, v in m.output.items()}
        {'stage2': (16, 16, 256), 'stage5': (2, 2, 2048)}
    """
    entry = lookup(backbone)
    input_shape, backbone_shape, resize = _resolve_shapes(entry, input_shape, image_size)
    chosen = _select_stages(entry, stages)
    if weights is not None and weights != "imagenet":
        net = build_backbone_model(entry, backbone_shape, None, backbone_kwargs)
        load_backbone_weights(net, weight_path(weights), entry=entry)
    else:
        net = build_backbone_model(entry, backbone_shape, weights, backbone_kwargs)
    check_stage_layers(net, entry.stage_layers)
    taps = keras.Model(
        net.inputs,
        {f"stage{k}": net.get_layer(entry.stage_layers[k - 1]).output for k in chosen},
        name=entry.keras_name,
    )
    inputs = keras.Input(input_shape, dtype="uint8", name="images")
    x = _preprocess(inputs, entry, backbone_shape, resize)
    outputs = InferenceMode(taps, name=f"{entry.name}_inference")(x)
    return keras.Model(inputs, outputs, name=name or f"{entry.name}_features")


def _select_stages(entry: BackboneEntry, stages) -> list[int]:
    n = entry.num_stages
    if stages is None:
        return list(range(1, n + 1))
    if isinstance(stages, (int, str)):
        stages = [stages]
    chosen = []
    for s in stages:
        if isinstance(s, str):
            if s not in entry.stage_layers:
                raise SpecError(
                    f"{s!r} is not a stage layer of backbone {entry.name!r}; "
                    f"its stages end at {list(entry.stage_layers)}"
                )
            k = entry.stage_layers.index(s) + 1
        elif isinstance(s, int) and -n <= s <= n and s != 0:
            k = s if s > 0 else n + 1 + s
        else:
            raise SpecError(
                f"stage {s!r} out of range for backbone {entry.name!r}, which has stages 1..{n}"
            )
        if k not in chosen:
            chosen.append(k)
    return sorted(chosen)
