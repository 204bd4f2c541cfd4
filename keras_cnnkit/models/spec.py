"""Declarative specifications of convolutional networks."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from keras_cnnkit.errors import SpecError
from keras_cnnkit.layers.classifier_head import OUTPUT_ACTIVATIONS, POOLINGS
from keras_cnnkit.layers.normalization import NORMALIZATIONS
from keras_cnnkit.layers.normalize import PRESETS

#: Paddings of a stage's convolutions.
PADDINGS = ("same", "valid")
#: Poolings after a stage's last plain convolution.
STAGE_POOLS = ("max", "avg", None)


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One stage: ``convs`` conv blocks, then pooling and dropout, then residual blocks.

    Args:
        filters: Output channels of every convolution in the stage.
        convs: Number of plain conv blocks (conv → norm → activation).
        kernel_size: Kernel size of the convolutions.
        strides: Stride of the first convolution (2 halves the feature map).
        padding: ``"same"``/``"valid"`` for every conv, or one per conv.
        pool: ``"max"``, ``"avg"`` or ``None``, after the last plain conv.
        pool_size: Pooling window and stride.
        dropout: Dropout rate after the pooling (0 disables it).
        residual: Number of residual blocks appended after the pooling (ResNet-9
            style, each ``x + f(x)`` with two conv blocks); ``True`` means one.
        normalization: Overrides the network's normalization for this stage.
        activation: Overrides the network's activation for this stage.
    """

    filters: int
    convs: int = 1
    kernel_size: int = 3
    strides: int = 1
    padding: str | tuple[str, ...] = "same"
    pool: str | None = "max"
    pool_size: int = 2
    dropout: float = 0.0
    residual: int = 0
    normalization: str | None = None
    activation: str | None = None

    def paddings(self) -> tuple[str, ...]:
        """The padding of each plain conv of the stage."""
        if isinstance(self.padding, str):
            return (self.padding,) * self.convs
        return tuple(self.padding)


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """The classifier on top of the stages.

    Args:
        pooling: ``"flatten"``, ``"avg"``, ``"max"`` or ``"avgmax"`` (global pooling
            gives a network that accepts any input size and is robust to shifts).
        hidden_units: Units of each hidden Dense layer.
        dropout: Dropout rate in the head.
        output_activation: ``"softmax"`` or ``None`` for logits.
        logit_scale: Optional factor on the logits.
    """

    pooling: str = "avg"
    hidden_units: tuple[int, ...] = ()
    dropout: float = 0.0
    output_activation: str | None = "softmax"
    logit_scale: float | None = None


@dataclasses.dataclass(frozen=True)
class ConvStackSpec:
    """A whole network: pixel normalization, optional stem, stages and head.

    Args:
        stages: The stages, first to last.
        head: The classifier head.
        stem_filters: Filters of an optional stem convolution before the stages
            (``None`` for no stem).
        normalization: Default normalization of every conv block (``"batch"`` is
            the fused :class:`~keras_cnnkit.layers.BatchNorm`).
        norm_momentum: Momentum of the batch normalizations' moving statistics.
        activation: Default activation of every conv block.
        preprocessing: Name of the :data:`~keras_cnnkit.layers.PRESETS` entry that
            maps raw pixels to the network's input range.
        kernel_initializer: Initializer of every convolution.
        weight_decay: L2 factor on every kernel (0 disables it). Recipes normally use
            the optimizer's decoupled weight decay instead.
    """

    stages: tuple[StageSpec, ...]
    head: HeadSpec = HeadSpec()
    stem_filters: int | None = None
    normalization: str | None = "batch"
    norm_momentum: float = 0.99
    activation: str = "relu"
    preprocessing: str = "unit"
    kernel_initializer: str = "glorot_uniform"
    weight_decay: float = 0.0

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ConvStackSpec:
        """Build a spec from plain data (e.g. parsed from JSON or TOML).

        Args:
            config: A mapping with the fields of :class:`ConvStackSpec`; ``stages``
                a list of mappings (or of ints, meaning only ``filters``) and ``head``
                a mapping.

        Returns:
            The spec.

        Raises:
            SpecError: On unknown keys or malformed values (naming them).

        Example:
            >>> spec = ConvStackSpec.from_dict({"stages": [16, {"filters": 32}]})
            >>> [s.filters for s in spec.stages]
            [16, 32]
        """
        config = dict(config)
        _check_keys("network", config, cls)
        stages = config.pop("stages", None)
        if not stages:
            raise SpecError("a network needs at least one stage: 'stages' is empty or missing")
        parsed = []
        for i, stage in enumerate(stages, start=1):
            if isinstance(stage, StageSpec):
                parsed.append(stage)
            elif isinstance(stage, int):
                parsed.append(StageSpec(filters=stage))
            elif isinstance(stage, Mapping):
                _check_keys(f"stage {i}", stage, StageSpec)
                stage = dict(stage)
                if isinstance(stage.get("padding"), list):
                    stage["padding"] = tuple(stage["padding"])
                parsed.append(StageSpec(**stage))
            else:
                raise SpecError(f"stage {i}: expected a mapping or an int, got {stage!r}")
        head = config.pop("head", HeadSpec())
        if isinstance(head, Mapping):
            _check_keys("head", head, HeadSpec)
            head = dict(head)
            head["hidden_units"] = tuple(head.get("hidden_units", ()))
            head = HeadSpec(**head)
        return cls(stages=tuple(parsed), head=head, **config)

    def scaled(self, width: float) -> ConvStackSpec:
        """Return a copy with every stage's (and the stem's) filters multiplied by ``width``.

        Args:
            width: Width multiplier (``0.5`` halves every layer; at least 1 filter is kept).

        Returns:
            The scaled spec.

        Raises:
            SpecError: If ``width`` is not positive.

        Example:
            >>> spec = ConvStackSpec(stages=(StageSpec(64), StageSpec(128)), stem_filters=32)
            >>> [s.filters for s in spec.scaled(0.25).stages], spec.scaled(0.25).stem_filters
            ([16, 32], 8)
        """
        if not width > 0:
            raise SpecError(f"width must be positive, got {width!r}")

        def scale(filters: int) -> int:
            return max(1, int(round(filters * width)))

        stages = tuple(dataclasses.replace(s, filters=scale(s.filters)) for s in self.stages)
        stem = None if self.stem_filters is None else scale(self.stem_filters)
        return dataclasses.replace(self, stages=stages, stem_filters=stem)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data that :meth:`from_dict` reads back."""
        return dataclasses.asdict(self)


_INT, _NUMBER, _STR = "an integer", "a number", "a string"
#: The type of each spec field: what it must be and whether ``None`` is allowed.
_FIELD_TYPES: dict[str, tuple[str, bool]] = {
    "filters": (_INT, False),
    "convs": (_INT, False),
    "kernel_size": (_INT, False),
    "strides": (_INT, False),
    "pool_size": (_INT, False),
    "stem_filters": (_INT, True),
    "dropout": (_NUMBER, False),
    "norm_momentum": (_NUMBER, False),
    "weight_decay": (_NUMBER, False),
    "logit_scale": (_NUMBER, True),
    "pool": (_STR, True),
    "normalization": (_STR, True),
    "activation": (_STR, True),
    "output_activation": (_STR, True),
    "pooling": (_STR, False),
    "preprocessing": (_STR, False),
    "kernel_initializer": (_STR, False),
}


def _is(value, kind: str) -> bool:
    if kind == _STR:
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if kind == _INT:
        return isinstance(value, int)
    return isinstance(value, (int, float))


def _check_types(where: str, spec) -> None:
    """Raise a :class:`SpecError` naming the first field of ``spec`` with a wrong type."""
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if field.name in _FIELD_TYPES:
            kind, optional = _FIELD_TYPES[field.name]
            if value is None and optional:
                continue
            if not _is(value, kind):
                or_none = " or None" if optional else ""
                raise SpecError(
                    f"{where}: {field.name!r} must be {kind}{or_none}, got {value!r} "
                    f"({type(value).__name__})"
                )
        elif field.name == "residual" and not isinstance(value, int):  # True means one
            raise SpecError(
                f"{where}: 'residual' must be an integer, got {value!r} ({type(value).__name__})"
            )
        elif field.name == "padding" and not (
            isinstance(value, str)
            or (isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value))
        ):
            raise SpecError(
                f"{where}: 'padding' must be a string or a list of strings, got {value!r}"
            )
        elif field.name == "hidden_units" and not (
            isinstance(value, (tuple, list)) and all(_is(v, _INT) for v in value)
        ):
            raise SpecError(f"{where}: 'hidden_units' must be a list of integers, got {value!r}")


def _check_keys(where: str, config: Mapping[str, Any], cls) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise SpecError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")


def validate_spec(
    spec: ConvStackSpec, input_shape: Sequence[int | None]
) -> list[tuple[int | None, int | None]]:
    """Check that ``spec`` builds a working network for ``input_shape``.

    Follows the spatial size through every convolution and pooling and fails on
    the first stage that cannot work.

    Args:
        spec: The network spec.
        input_shape: ``(height, width, channels)``; height and width may be
            ``None`` (any size) when the head uses global pooling.

    Returns:
        The spatial size ``(height, width)`` after each stage.

    Raises:
        SpecError: Naming the stage (1-based) and the reason, e.g. a pooling of a
            feature map smaller than its window.

    Example:
        >>> spec = ConvStackSpec(stages=(StageSpec(8), StageSpec(16)))
        >>> validate_spec(spec, (32, 32, 3))
        [(16, 16), (8, 8)]
    """
    if len(input_shape) != 3:
        raise SpecError(f"input_shape must be (height, width, channels), got {tuple(input_shape)}")
    h, w, c = input_shape
    if c is None or int(c) < 1:
        raise SpecError(f"input_shape needs a positive channel count, got {tuple(input_shape)}")
    for dim in (h, w):
        if dim is not None and int(dim) < 1:
            raise SpecError(f"input_shape has a non-positive size: {tuple(input_shape)}")
    _check_types("network", spec)
    _check_types("head", spec.head)
    for i, stage in enumerate(spec.stages, start=1):
        if not isinstance(stage, StageSpec):
            raise SpecError(f"stage {i}: expected a StageSpec, got {stage!r}")
        _check_types(f"stage {i} (filters={stage.filters!r})", stage)
    if (h is None or w is None) and spec.head.pooling == "flatten":
        raise SpecError(
            "head: pooling='flatten' needs a fixed input size; use global pooling "
            "('avg', 'max' or 'avgmax') for inputs of any size"
        )
    if spec.normalization not in NORMALIZATIONS and spec.normalization is not None:
        raise SpecError(
            f"network: unknown normalization {spec.normalization!r}; "
            f"expected one of {list(NORMALIZATIONS)}"
        )
    if spec.preprocessing not in PRESETS:
        raise SpecError(
            f"network: unknown preprocessing {spec.preprocessing!r}; "
            f"expected one of {list(PRESETS)}"
        )
    if spec.head.pooling not in POOLINGS:
        raise SpecError(f"head: pooling must be one of {list(POOLINGS)}, got {spec.head.pooling!r}")
    if spec.head.output_activation not in OUTPUT_ACTIVATIONS:
        raise SpecError(
            f"head: output_activation must be one of {list(OUTPUT_ACTIVATIONS)}, "
            f"got {spec.head.output_activation!r}"
        )
    if not 0 <= spec.head.dropout < 1:
        raise SpecError(f"head: dropout must be in [0, 1), got {spec.head.dropout}")

    def conv(size, kernel, stride, padding):
        if size is None:
            return None
        if padding == "valid":
            size = size - kernel + 1
        return None if size is None else -(-size // stride)

    size = [h, w]
    where = "input"
    sizes = []
    if spec.stem_filters is not None:
        size = [conv(s, 3, 1, "same") for s in size]
    for i, stage in enumerate(spec.stages, start=1):
        name = f"stage {i} (filters={stage.filters})"
        if stage.filters < 1:
            raise SpecError(f"{name}: filters must be positive")
        if stage.convs < 0 or stage.residual < 0:
            raise SpecError(f"{name}: convs and residual must not be negative")
        if stage.convs == 0 and stage.residual == 0:
            raise SpecError(f"{name}: a stage needs at least one conv or residual block")
        if stage.convs == 0 and stage.pool:
            raise SpecError(f"{name}: pooling needs at least one plain conv before it (convs >= 1)")
        paddings = stage.paddings()
        if len(paddings) != stage.convs:
            raise SpecError(f"{name}: {len(paddings)} paddings given for {stage.convs} convs")
        for p in paddings:
            if p not in PADDINGS:
                raise SpecError(f"{name}: padding must be one of {list(PADDINGS)}, got {p!r}")
        if stage.pool not in STAGE_POOLS:
            raise SpecError(f"{name}: pool must be one of {list(STAGE_POOLS)}, got {stage.pool!r}")
        if not 0 <= stage.dropout < 1:
            raise SpecError(f"{name}: dropout must be in [0, 1), got {stage.dropout}")
        norm = stage.normalization or spec.normalization
        if norm not in NORMALIZATIONS and norm is not None:
            raise SpecError(
                f"{name}: unknown normalization {norm!r}; expected one of {list(NORMALIZATIONS)}"
            )
        for j, padding in enumerate(paddings):
            stride = stage.strides if j == 0 else 1
            for s in size:
                if s is not None and padding == "valid" and s < stage.kernel_size:
                    raise SpecError(
                        f"{name}: a {stage.kernel_size}x{stage.kernel_size} 'valid' convolution "
                        f"cannot run on the {size[0]}x{size[1]} feature map left after {where}"
                    )
            size = [conv(s, stage.kernel_size, stride, padding) for s in size]
        if stage.pool:
            for s in size:
                if s is not None and s < stage.pool_size:
                    raise SpecError(
                        f"{name}: cannot pool a {size[0]}x{size[1]} feature map (left after "
                        f"{where}) with pool_size {stage.pool_size}; the input "
                        f"{h}x{w} is too small for this many poolings"
                    )
            size = [None if s is None else s // stage.pool_size for s in size]
        if stage.convs == 0:  # the first residual block carries the stride
            size = [conv(s, stage.kernel_size, stage.strides, "same") for s in size]
        where = f"stage {i}"
        sizes.append((size[0], size[1]))
    return sizes
