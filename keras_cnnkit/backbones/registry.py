"""The backbone registry: one entry per keras.applications convolutional network."""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from collections.abc import Mapping

import keras

from keras_cnnkit._deprecation import deprecated
from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers import PRESETS


@dataclasses.dataclass(frozen=True)
class BackboneEntry:
    """What keras_cnnkit knows about one pretrained backbone.

    Attributes:
        name: Registry name (lowercase, e.g. ``"resnet50"``).
        constructor: Name of the ``keras.applications`` function that builds it.
        module: The ``keras.applications`` module of the family (where its
            ``preprocess_input`` and ``decode_predictions`` live), e.g. ``"resnet"``.
        preprocessing: The :data:`keras_cnnkit.layers.PRESETS` entry that maps raw
            0..255 RGB pixels to what the ImageNet weights expect.
        default_size: Input side the weights were trained at.
        min_size: Smallest input side the network accepts without its top.
        stage_layers: Names of the layers that end each stage, shallow to deep.
        kwargs: Extra keyword arguments always passed to the constructor.
        model_name: The ``name`` given to the constructor, when it must differ
            from ``name`` (EfficientNetV2 looks its configuration up by it); it
            must normalize to ``name`` (case, ``-`` and ``_`` ignored).

    Example:
        >>> from keras_cnnkit.backbones import backbone_entry
        >>> backbone_entry("resnet50").preprocessing
        'caffe'
    """

    name: str
    constructor: str
    module: str
    preprocessing: str
    default_size: int
    min_size: int
    stage_layers: tuple[str, ...]
    kwargs: Mapping[str, object] = dataclasses.field(default_factory=dict)
    model_name: str | None = None

    def __post_init__(self):
        if self.model_name is not None and _normalize(self.model_name) != _normalize(self.name):
            raise SpecError(
                f"backbone {self.name!r}: model_name {self.model_name!r} must match the name"
            )
        if self.preprocessing not in PRESETS:
            raise SpecError(
                f"backbone {self.name!r}: unknown preprocessing {self.preprocessing!r}; "
                f"expected one of {list(PRESETS)}"
            )
        if not self.stage_layers:
            raise SpecError(f"backbone {self.name!r}: stage_layers must not be empty")
        if not 0 < self.min_size <= self.default_size:
            raise SpecError(
                f"backbone {self.name!r}: min_size {self.min_size} must be in "
                f"(0, default_size={self.default_size}]"
            )

    @property
    def keras_name(self) -> str:
        """The name of the built keras.applications model."""
        return self.model_name or self.name

    @property
    def num_stages(self) -> int:
        """Number of stages (one per entry of ``stage_layers``)."""
        return len(self.stage_layers)

    def constructor_fn(self):
        """Return the ``keras.applications`` function that builds this backbone."""
        return getattr(keras.applications, self.constructor)

    def preprocess_input_fn(self):
        """Return the family's ``keras.applications.<module>.preprocess_input``."""
        return getattr(keras.applications, self.module).preprocess_input


_REGISTRY: dict[str, BackboneEntry] = {}


def register_backbone(entry: BackboneEntry, *, overwrite: bool = False) -> BackboneEntry:
    """Add ``entry`` to the registry.

    Args:
        entry: The backbone description.
        overwrite: Replace an existing entry of the same name instead of raising.

    Returns:
        The registered entry.

    Raises:
        SpecError: If the name is taken and ``overwrite`` is false.

    Example:
        >>> from keras_cnnkit.backbones import backbone_entry
        >>> entry = backbone_entry("vgg16")
        >>> register_backbone(entry, overwrite=True) is entry
        True
    """
    key = entry.name.lower()
    if key in _REGISTRY and not overwrite:
        raise SpecError(f"a backbone named {entry.name!r} is already registered")
    _REGISTRY[key] = entry
    return entry


def _normalize(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def lookup(name: str | BackboneEntry) -> BackboneEntry:
    """The entry registered under ``name`` (case, ``-`` and ``_`` are ignored).

    The public form is :func:`keras_cnnkit.backbones.backbone_entry`, which also
    takes a model.

    Args:
        name: A registry name (``"resnet50"``), a ``keras.applications``
            constructor name (``"ResNet50"``) or an entry.

    Returns:
        The registry entry.

    Raises:
        SpecError: If no backbone has that name; the message lists the closest names.
    """
    if isinstance(name, BackboneEntry):
        return name
    if not isinstance(name, str):
        raise SpecError(f"backbone must be a name, got {name!r}")
    key = _normalize(name)
    for entry_name, entry in _REGISTRY.items():
        if _normalize(entry_name) == key:
            return entry
    close = difflib.get_close_matches(name.lower(), list(_REGISTRY), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise SpecError(
        f"unknown backbone {name!r}{hint} (list_backbones() gives all {len(_REGISTRY)} names)"
    )


@deprecated(since="0.1.0", alternative="keras_cnnkit.backbones.backbone_entry")
def get_backbone(name: str | BackboneEntry) -> BackboneEntry:
    """Deprecated name of :func:`keras_cnnkit.backbones.backbone_entry` (a registry entry).

    Args:
        name: A registry or ``keras.applications`` name, or an entry.

    Returns:
        The registry entry.
    """
    return lookup(name)


def list_backbones(pattern: str = "*") -> list[str]:
    """Names of the registered backbones matching a shell-style wildcard, sorted.

    Args:
        pattern: ``fnmatch`` pattern, case-insensitive (``"resnet*"``, ``"efficientnet*"``).

    Returns:
        The matching names (an empty list when nothing matches).

    Example:
        >>> list_backbones("resnet5*")
        ['resnet50', 'resnet50v2']
    """
    pattern = pattern.lower()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))
