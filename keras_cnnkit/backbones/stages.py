"""Stages of a backbone: where they end, which layers they hold, what they output."""

from __future__ import annotations

import dataclasses
import math
import re

import keras

from keras_cnnkit.backbones.registry import BackboneEntry, get_backbone
from keras_cnnkit.errors import SpecError


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """One feature map of a backbone, computed from the built network.

    Attributes:
        stage: Stage number, from 1 (shallowest).
        layer: Name of the layer that ends the stage.
        reduction: Input side divided by the feature map's side (``None`` when
            the input size is not static).
        channels: Number of channels.
    """

    stage: int
    layer: str
    reduction: int | None
    channels: int


def find_backbone(model: keras.Model) -> keras.Model:
    """Return the keras.applications backbone nested in a keras_cnnkit model.

    Args:
        model: A model from :func:`build_classifier` or :func:`feature_extractor`
            (also after ``.keras`` save/load), or a backbone itself.

    Returns:
        The backbone model, named after its registry entry.

    Raises:
        SpecError: If ``model`` holds no registered backbone.

    Example:
        >>> from keras_cnnkit.backbones import build_classifier
        >>> m = build_classifier("vgg16", 3, input_shape=(32, 32, 3), weights=None)
        >>> find_backbone(m).name
        'vgg16'
    """
    if not isinstance(model, keras.Model):
        raise SpecError(f"expected a keras.Model, got {type(model).__name__}")
    if _is_registered(model.name) and not any(_is_registered(la.name) for la in _models(model)):
        return model
    found = [la for la in _models(model) if _is_registered(la.name)]
    if len(found) != 1:
        names = [la.name for la in _models(model)]
        raise SpecError(
            f"model {model.name!r} must hold exactly one registered backbone, found "
            f"{len(found)} among its nested models {names}"
        )
    return found[0]


def backbone_entry(model: keras.Model) -> BackboneEntry:
    """The registry entry of the backbone inside ``model``.

    Args:
        model: A keras_cnnkit classifier or feature extractor, or a backbone.

    Returns:
        The entry.

    Raises:
        SpecError: If ``model`` holds no registered backbone.
    """
    return get_backbone(find_backbone(model).name)


def _models(model):
    found = []
    for layer in model.layers:
        while isinstance(layer, keras.layers.Wrapper):
            layer = layer.layer
        if isinstance(layer, keras.Model):
            found.append(layer)
    return found


def _is_registered(name: str) -> bool:
    try:
        get_backbone(name)
    except SpecError:
        return False
    return True


def _is_auto_named(layer) -> bool:
    """Whether ``layer`` carries Keras' generated name (class name in snake case + _N)."""
    name = re.sub(r"\W+", "", type(layer).__name__)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return re.fullmatch(re.escape(name) + r"(_\d+)?", layer.name) is not None


def _parents(layer):
    for node in layer._inbound_nodes:
        for tensor in node.input_tensors:
            yield tensor._keras_history.operation


def stage_of_layers(backbone: keras.Model, stage_layers=None) -> dict[str, int]:
    """Map each layer of ``backbone`` to its stage number (1 = shallowest).

    A layer belongs to the first stage whose end layer depends on it; layers
    after the last stage end belong to the last stage.

    Args:
        backbone: A keras.applications backbone (or a model holding one).
        stage_layers: Names of the stage-end layers; the registry's by default.

    Returns:
        ``{layer name: stage}`` for every layer but the input.

    Raises:
        SpecError: If a stage layer is not in the network.
    """
    backbone = find_backbone(backbone) if stage_layers is None else backbone
    if stage_layers is None:
        stage_layers = get_backbone(backbone.name).stage_layers
    by_name = {la.name: la for la in backbone.layers}
    check_stage_layers(backbone, stage_layers)
    stage: dict[str, int] = {}
    for k, tap in enumerate(stage_layers, start=1):
        todo = [by_name[tap]]
        while todo:
            layer = todo.pop()
            if layer.name in stage or layer.name not in by_name:
                continue
            stage[layer.name] = k
            todo.extend(_parents(layer))
    last = len(stage_layers)
    result = {}
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        result[layer.name] = stage.get(layer.name, last)
    return result


def check_stage_layers(backbone: keras.Model, stage_layers) -> None:
    """Raise a :class:`SpecError` naming every stage layer missing from ``backbone``.

    Args:
        backbone: The built network.
        stage_layers: Layer names.

    Raises:
        SpecError: If some are missing.
    """
    names = {la.name for la in backbone.layers}
    missing = [n for n in stage_layers if n not in names]
    if missing:
        raise SpecError(
            f"stage layers {missing} are not layers of backbone {backbone.name!r} "
            f"({len(names)} layers)"
        )


def feature_info(backbone: keras.Model, stage_layers=None) -> list[FeatureInfo]:
    """Describe the stage outputs of a built backbone, computed from its layers.

    Args:
        backbone: A keras.applications backbone, or a model holding one.
        stage_layers: Stage-end layer names; the registry's by default.

    Returns:
        One :class:`FeatureInfo` per stage, shallow to deep.

    Raises:
        SpecError: If a stage layer is not in the network.

    Example:
        >>> import keras
        >>> bb = keras.applications.ResNet50(
        ...     include_top=False, weights=None, input_shape=(64, 64, 3), name="resnet50")
        >>> [f.reduction for f in feature_info(bb)]
        [2, 4, 8, 16, 32]
    """
    backbone = find_backbone(backbone) if stage_layers is None else backbone
    if stage_layers is None:
        stage_layers = get_backbone(backbone.name).stage_layers
    check_stage_layers(backbone, stage_layers)
    side = backbone.inputs[0].shape[1]
    info = []
    for k, name in enumerate(stage_layers, start=1):
        shape = backbone.get_layer(name).output.shape
        reduction = None
        if side is not None and shape[1] is not None:
            reduction = 2 ** round(math.log2(side / shape[1]))
        info.append(FeatureInfo(k, name, reduction, int(shape[-1])))
    return info


def find_stage_ends(backbone: keras.Model) -> dict[int, str]:
    """Compute, from the graph, the layer that ends each output stride.

    For each reduction (input side over feature side, a power of two), the last
    layer in topological order that every input-to-output path passes through
    and whose name was given explicitly (auto-numbered names such as
    ``activation_3`` change from one build to the next, so they are skipped).
    Needs a static input size (the default size of the backbone works best).
    This is how the registry's ``stage_layers`` are checked.

    Args:
        backbone: A built keras.applications backbone.

    Returns:
        ``{reduction: layer name}``.

    Raises:
        SpecError: If the input size is not static.
    """
    side = backbone.inputs[0].shape[1]
    if side is None:
        raise SpecError(f"backbone {backbone.name!r} needs a static input size here")
    layers = backbone.layers
    pos = {id(la): i for i, la in enumerate(layers)}
    reach = list(range(len(layers)))
    for i, layer in enumerate(layers):
        for parent in _parents(layer):
            j = pos.get(id(parent))
            if j is not None:
                reach[j] = max(reach[j], i)
    ends: dict[int, str] = {}
    furthest = 0
    for i, layer in enumerate(layers):
        is_cut = furthest <= i
        furthest = max(furthest, reach[i])
        if not is_cut or isinstance(layer, (keras.layers.InputLayer, keras.layers.ZeroPadding2D)):
            continue
        if _is_auto_named(layer):
            continue
        shape = layer.output.shape
        if len(shape) != 4 or shape[1] is None:
            continue
        ends[2 ** round(math.log2(side / shape[1]))] = layer.name
    return ends
