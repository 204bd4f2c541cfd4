"""What a model expects as input: size, colour mode, resize settings, preprocessing, classes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from keras_cnnkit.data._layers import INTERPOLATIONS, RESIZE_MODES, check_image_size
from keras_cnnkit.errors import DataError, SpecError

#: Colour modes and their channel counts.
COLOR_MODES = {"rgb": 3, "grayscale": 1}

#: The keys of a model's recorded input preprocessing (``ModelMetadata.input_preprocessing``).
INPUT_KEYS = (
    "image_size",
    "color_mode",
    "resize_mode",
    "interpolation",
    "antialias",
    "center_crop",
)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How image files become a model's input, as the model recorded it.

    Returned by :func:`data_config`, accepted by the pipelines
    (``from_directory(root, data_config=...)``), and used by ``cnnkit predict``,
    ``cnnkit evaluate`` and the exported ``serving_bytes`` signature, so that one file
    gives the same pixels on every route.

    Attributes:
        image_size: ``(height, width)`` images are resized to, or ``None`` (kept).
        color_mode: ``"rgb"`` or ``"grayscale"``.
        resize_mode: ``"stretch"``, ``"crop"`` or ``"pad"``.
        interpolation: The resizing interpolation.
        antialias: Whether downsampling is antialiased.
        center_crop: Central fraction kept after resizing, or ``None``.
        class_names: Names of the output classes, or ``None``.
        preprocessing: The normalization the model applies to its raw-pixel input
            (``Normalize`` layer configs), or ``None`` if it applies none.

    Example:
        >>> cfg = DataConfig(image_size=(32, 32), class_names=("cat", "dog"))
        >>> cfg.channels, cfg.to_dict()["image_size"]
        (3, [32, 32])
    """

    image_size: tuple[int, int] | None = (224, 224)
    color_mode: str = "rgb"
    resize_mode: str = "stretch"
    interpolation: str = "bilinear"
    antialias: bool = False
    center_crop: float | None = None
    class_names: tuple[str, ...] | None = None
    preprocessing: Any = None

    def __post_init__(self) -> None:
        if self.image_size is not None:
            object.__setattr__(self, "image_size", check_image_size(self.image_size))
        if self.color_mode not in COLOR_MODES:
            raise SpecError(
                f"color_mode must be one of {tuple(COLOR_MODES)}, got {self.color_mode!r}"
            )
        if self.resize_mode not in RESIZE_MODES:
            raise SpecError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise SpecError(
                f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}"
            )
        if self.center_crop is not None:
            if not 0.0 < float(self.center_crop) <= 1.0:
                raise SpecError(
                    f"center_crop must be a fraction in (0, 1], got {self.center_crop!r}"
                )
            object.__setattr__(self, "center_crop", float(self.center_crop))
        if self.image_size is None and (self.resize_mode != "stretch" or self.center_crop):
            raise SpecError("resize_mode and center_crop need an image_size")
        object.__setattr__(self, "antialias", bool(self.antialias))
        if self.class_names is not None:
            object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        if isinstance(self.preprocessing, list):
            object.__setattr__(self, "preprocessing", tuple(self.preprocessing))

    @property
    def channels(self) -> int:
        """3 for ``"rgb"``, 1 for ``"grayscale"``."""
        return COLOR_MODES[self.color_mode]

    @property
    def normalizes(self) -> bool:
        """Whether the model normalizes its input itself (it then takes raw pixels)."""
        return bool(self.preprocessing)

    def input_preprocessing(self) -> dict:
        """The input settings as recorded in a model's metadata (JSON-ready)."""
        data = self.to_dict()
        return {k: data[k] for k in INPUT_KEYS}

    def to_dict(self) -> dict:
        """All fields as a JSON-ready dict."""
        return {
            "image_size": None if self.image_size is None else list(self.image_size),
            "color_mode": self.color_mode,
            "resize_mode": self.resize_mode,
            "interpolation": self.interpolation,
            "antialias": self.antialias,
            "center_crop": self.center_crop,
            "class_names": None if self.class_names is None else list(self.class_names),
            "preprocessing": None if self.preprocessing is None else list(self.preprocessing),
        }

    def __hash__(self) -> int:
        return hash((self.image_size, self.color_mode, self.resize_mode, self.interpolation,
                     self.antialias, self.center_crop))  # fmt: skip


def _model_and_metadata(source, metadata):
    from keras_cnnkit.io.metadata import ModelMetadata

    model = source
    if isinstance(source, ModelMetadata):
        return None, source
    if isinstance(source, tuple) and len(source) == 2:  # io.load's (model, metadata)
        model, found = source
        metadata = metadata if metadata is not None else found
    return model, metadata


def data_config(source, metadata=None) -> DataConfig:
    """The input a model expects, read from the model and its metadata.

    In the spirit of timm's ``resolve_data_config``: the input size and colour mode come
    from the model's input (or the recorded input preprocessing), the resize settings
    from the metadata's ``input_preprocessing`` (the library's defaults when none was
    recorded), the preprocessing from the model's own ``Normalize`` layers and the class
    names from the metadata.

    Args:
        source: A Keras model, the ``(model, metadata)`` pair returned by
            :func:`keras_cnnkit.io.load`, a :class:`~keras_cnnkit.io.ModelMetadata`, or a
            :class:`DataConfig` (returned as it is).
        metadata: The model's :class:`~keras_cnnkit.io.ModelMetadata` (or its dict), if
            not part of ``source``.

    Returns:
        The :class:`DataConfig`.

    Raises:
        DataError: If the model does not take one batch of images
            ``[batch, height, width, 1 or 3]``.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((32, 24, 3)), keras.layers.Flatten()])
        >>> cfg = data_config(model)
        >>> cfg.image_size, cfg.color_mode, cfg.resize_mode
        ((32, 24), 'rgb', 'stretch')
    """
    if isinstance(source, DataConfig):
        return source
    model, metadata = _model_and_metadata(source, metadata)
    meta: dict = {}
    if metadata is not None:
        meta = metadata if isinstance(metadata, Mapping) else metadata.to_dict()
    recorded = dict(meta.get("input_preprocessing") or {})
    size = recorded.get("image_size")
    channels = None
    preprocessing = meta.get("preprocessing")
    if model is not None:
        inputs = getattr(model, "inputs", None) or []
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[-1] not in (1, 3):
            shapes = [tuple(t.shape) for t in inputs]
            raise DataError(
                f"data_config: model {getattr(model, 'name', model)!r} must take one batch of "
                f"images [batch, height, width, 1 or 3]; its inputs are {shapes}"
            )
        _, height, width, channels = inputs[0].shape
        if height is not None and width is not None:
            size = (int(height), int(width))
        from keras_cnnkit.io.metadata import preprocessing_from_model

        preprocessing = preprocessing_from_model(model)
    elif meta.get("input_spec"):
        shape = meta["input_spec"][0].get("shape") or []
        if len(shape) == 4:
            if size is None and shape[1] and shape[2]:
                size = (int(shape[1]), int(shape[2]))
            channels = shape[3]
    color_mode = recorded.get("color_mode")
    if color_mode is None:
        color_mode = "grayscale" if channels == 1 else "rgb"
    elif channels is not None and COLOR_MODES.get(color_mode) != int(channels):
        raise DataError(
            f"data_config: the metadata records color_mode={color_mode!r} but the model "
            f"takes {channels} channel(s)"
        )
    names = meta.get("class_names")
    return DataConfig(
        image_size=None if size is None else tuple(size),
        color_mode=color_mode,
        resize_mode=recorded.get("resize_mode", "stretch"),
        interpolation=recorded.get("interpolation", "bilinear"),
        antialias=bool(recorded.get("antialias", False)),
        center_crop=recorded.get("center_crop"),
        class_names=None if not names else tuple(names),
        preprocessing=preprocessing or None,
    )


def merge_config(
    given: Mapping[str, Any], defaults: Mapping[str, Any], config: DataConfig | None, where: str
) -> dict[str, Any]:
    """The settings of ``config`` in place of the pipeline arguments they cover.

    An argument given with a value other than its default and other than the
    configuration's is a contradiction and raises.

    Args:
        given: The pipeline's arguments.
        defaults: Their defaults.
        config: The model's :class:`DataConfig`, or ``None``.
        where: The function name, for messages.

    Returns:
        The arguments with the configuration applied.

    Raises:
        SpecError: If an argument contradicts the configuration.
    """
    out = dict(given)
    if config is None:
        return out
    wanted = config.to_dict()
    for key in INPUT_KEYS + ("class_names",):
        value = wanted[key]
        if key == "class_names" and value is None:
            continue
        current = given.get(key)
        norm = (
            (lambda v: None if v is None else list(v))
            if key in ("image_size", "class_names")
            else (lambda v: v)
        )
        if key == "image_size" and isinstance(current, int):
            current = [current, current]
        if norm(current) != norm(defaults.get(key)) and norm(current) != norm(value):
            raise SpecError(
                f"{where}: {key}={given.get(key)!r} contradicts the model's data_config "
                f"({key}={value!r}); leave it out"
            )
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def check_raw_pixels(normalize, config: DataConfig | None, where: str) -> None:
    """Refuse a normalizing pipeline for a model that normalizes its raw-pixel input.

    Args:
        normalize: The pipeline's ``normalize`` argument.
        config: The model's :class:`DataConfig`, or ``None``.
        where: The function name, for messages.

    Raises:
        DataError: If both normalize.
    """
    if normalize is None or config is None or not config.normalizes:
        return
    kinds: Sequence = [
        p.get("layer", "Normalize") for p in config.preprocessing if isinstance(p, Mapping)
    ]
    raise DataError(
        f"{where}: normalize={normalize!r} would normalize twice: the model normalizes its "
        f"raw-pixel input itself (layer(s) {list(kinds)}); leave normalize out so the "
        "pipeline gives raw pixels (0..255)"
    )
