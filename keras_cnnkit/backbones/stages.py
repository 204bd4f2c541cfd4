"""Stages of a backbone: where they end, which layers they hold, what they output."""

from __future__ import annotations

import dataclasses
import math
import re

import keras

from keras_cnnkit._deprecation import deprecated, deprecated_argument
from keras_cnnkit.backbones.registry import BackboneEntry, lookup
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


def backbone_model(model: keras.Model) -> keras.Model:
    """Return the keras.applications backbone (a ``keras.Model``) nested in a model.

    Args:
        model: A model from :func:`build_classifier`, :func:`feature_extractor` or
            :func:`keras_cnnkit.reset_classifier` (also after ``.keras``
            save/load), or a backbone itself.

    Returns:
        The backbone model, named after its registry entry.

    Raises:
        SpecError: If ``model`` holds no registered backbone.

    Example:
        >>> from keras_cnnkit.backbones import build_classifier
        >>> m = build_classifier("vgg16", 3, input_shape=(32, 32, 3), weights=None)
        >>> backbone_model(m).name
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


@deprecated_argument("model", "backbone", since="0.1.0")
def backbone_entry(backbone: str | BackboneEntry | keras.Model) -> BackboneEntry:
    """The registry entry of a backbone name, or of the backbone inside a model.

    Args:
        backbone: A registry name (``"resnet50"``), a ``keras.applications``
            constructor name (``"ResNet50"``; case, ``-`` and ``_`` are ignored),
            an entry, or a keras_cnnkit classifier, feature extractor or backbone.

    Returns:
        The entry: preprocessing, default and minimum sizes, stage layers.

    Raises:
        SpecError: If no backbone has that name (the message lists the closest
            names) or the model holds no registered backbone.

    Example:
        >>> backbone_entry("ResNet50").name, backbone_entry("resnet50").min_size
        ('resnet50', 32)
    """
    if isinstance(backbone, keras.Model):
        return lookup(backbone_model(backbone).name)
    return lookup(backbone)


@deprecated(since="0.1.0", alternative="keras_cnnkit.backbones.backbone_model")
def find_backbone(model: keras.Model) -> keras.Model:
    """Deprecated name of :func:`backbone_model` (the backbone ``keras.Model``).

    Args:
        model: A keras_cnnkit classifier or feature extractor, or a backbone.

    Returns:
        The backbone model.
    """
    return backbone_model(model)


def stage_numbers(backbone: keras.Model) -> list[int]:
    """The stages a built backbone computes, 1 = shallowest.

    Every stage of its registry entry, except for the truncated backbone inside
    a :func:`feature_extractor`, which computes the stages it was built for
    (its outputs are named ``stage<k>``).

    Args:
        backbone: A keras.applications backbone, or a model holding one.

    Returns:
        The stage numbers, ascending.

    Raises:
        SpecError: If ``backbone`` holds no registered backbone.

    Example:
        >>> from keras_cnnkit.backbones import feature_extractor
        >>> m = feature_extractor("vgg16", stages=(1, 3), input_shape=(32, 32, 3), weights=None)
        >>> stage_numbers(m)
        [1, 3]
    """
    backbone = backbone_model(backbone)
    outputs = backbone.output
    if (
        isinstance(outputs, dict)
        and outputs
        and all(re.fullmatch(r"stage\d+", str(key)) for key in outputs)
    ):
        return sorted(int(str(key)[5:]) for key in outputs)
    return list(range(1, lookup(backbone.name).num_stages + 1))


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
        lookup(name)
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
        stage_layers: Names of the stage-end layers; by default the registry's,
            up to the deepest stage the backbone computes (see
            :func:`stage_numbers`).

    Returns:
        ``{layer name: stage}`` for every layer but the input.

    Raises:
        SpecError: If a stage layer is not in the network.
    """
    if stage_layers is None:
        backbone = backbone_model(backbone)
        stage_layers = lookup(backbone.name).stage_layers[: stage_numbers(backbone)[-1]]
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
        backbone: A keras.applications backbone, or a model holding one (the
            feature maps of a :func:`feature_extractor` are those of the stages it
            was built for).
        stage_layers: Stage-end layer names; by default the registry's, for the
            stages the backbone computes (see :func:`stage_numbers`).

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
    if stage_layers is None:
        backbone = backbone_model(backbone)
        all_layers = lookup(backbone.name).stage_layers
        taps = [(k, all_layers[k - 1]) for k in stage_numbers(backbone)]
    else:
        taps = list(enumerate(stage_layers, start=1))
    check_stage_layers(backbone, [name for _, name in taps])
    side = backbone.inputs[0].shape[1]
    info = []
    for k, name in taps:
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
