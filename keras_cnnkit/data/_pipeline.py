"""Image pipelines: folders, file lists or arrays to shuffled, augmented ``tf.data`` batches."""

from __future__ import annotations

import hashlib
import os
import pathlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import tensorflow as tf

from keras_cnnkit.datasets.image_folder import IMAGE_EXTENSIONS
from keras_cnnkit.errors import ConfigError, DataError, ImageDecodeError, SpecError
from keras_cnnkit.preprocessing.augment import make_augmentation
from keras_cnnkit.preprocessing.decode import (
    DECODER_TF,
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    decode_image_file,
    inspect_image,
)
from keras_cnnkit.preprocessing.layers import ImagePreprocessing, check_image_size, make_normalize
from keras_cnnkit.preprocessing.report import SkipReport

ON_ERROR = ("raise", "skip")
COLOR_MODES = {"rgb": 3, "grayscale": 1}
LABEL_MODES = ("int", "categorical", None)
SUBSETS = ("training", "validation", "both")

# Branches of the per-file decoder switch: Pillow, TF PNG, TF JPEG at 1/1, 1/2, 1/4, 1/8.
_BRANCH_PIL, _BRANCH_PNG, _BRANCH_JPEG = 0, 1, 2
_JPEG_RATIOS = (1, 2, 4, 8)


# --------------------------------------------------------------------------- checks


def _check_common(
    on_error, color_mode, label_mode, validation_split, subset, batch_size, cache
) -> None:
    if on_error not in ON_ERROR:
        raise SpecError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if color_mode not in COLOR_MODES:
        raise SpecError(f"color_mode must be one of {tuple(COLOR_MODES)}, got {color_mode!r}")
    if label_mode not in LABEL_MODES:
        raise SpecError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    if validation_split is not None:
        if not 0.0 < float(validation_split) < 1.0:
            raise SpecError(f"validation_split must be in (0, 1), got {validation_split!r}")
        if subset not in SUBSETS:
            raise SpecError(
                f"subset must be one of {SUBSETS} when validation_split is set, got {subset!r}"
            )
    elif subset is not None:
        raise SpecError(f"subset={subset!r} needs a validation_split")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
        raise SpecError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if cache not in (None, False, True, "memory") and not isinstance(cache, (str, os.PathLike)):
        raise SpecError(f"cache must be None, 'memory' or a file path, got {cache!r}")


def in_validation(key: str, fraction: float, seed: int) -> bool:
    """Whether ``key`` falls in the validation part of a seeded, stable partition.

    The decision depends only on ``key`` (e.g. a file's path relative to the root),
    ``seed`` and ``fraction``: the same file lands on the same side on every run, on
    every machine, whatever other files are added or removed.

    Args:
        key: The item's stable identifier.
        fraction: Share of items in validation, in (0, 1).
        seed: Partition seed.

    Returns:
        ``True`` if the item is in the validation part.

    Example:
        >>> in_validation("cat/001.jpg", 0.2, seed=0) == in_validation("cat/001.jpg", 0.2, seed=0)
        True
    """
    digest = hashlib.sha256(f"{int(seed)}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < float(fraction)


# --------------------------------------------------------------------------- scanning


def _scan(
    paths: Sequence[str], max_pixels: int | None, on_error: str, report: SkipReport
) -> list[ImageInfo | None]:
    """Inspect every file in parallel; raise the first failure (in order) or record all."""

    def one(path):
        try:
            return inspect_image(path, max_pixels)
        except ImageDecodeError as exc:
            return exc

    workers = min(32, 2 * (os.cpu_count() or 1))
    if len(paths) > 8:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, paths, chunksize=16))
    else:
        results = [one(p) for p in paths]
    out: list[ImageInfo | None] = []
    for path, res in zip(paths, results):
        if isinstance(res, ImageDecodeError):
            if on_error == "raise":
                raise res
            report.add(path, getattr(res, "reason", str(res)))
            out.append(None)
        else:
            out.append(res)
    return out


def _branch(info: ImageInfo, target: tuple[int, int] | None) -> int:
    if info.decoder != DECODER_TF:
        return _BRANCH_PIL
    if info.format == "PNG":
        return _BRANCH_PNG
    ratio_index = 0
    if target is not None:
        th, tw = target
        for i, r in enumerate(_JPEG_RATIOS):
            if info.height / r >= th and info.width / r >= tw:
                ratio_index = i
    return _BRANCH_JPEG + ratio_index


# --------------------------------------------------------------------------- building


def _resize_target(pre: ImagePreprocessing | None) -> tuple[int, int] | None:
    if pre is None:
        return None
    h, w = pre.image_size
    if pre.center_crop is not None:
        h, w = round(h / pre.center_crop), round(w / pre.center_crop)
    return h, w


def _to_uint8(x):
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def _finish(
    ds: tf.data.Dataset,
    n: int,
    *,
    labeled: bool,
    label_mode: str | None,
    num_classes: int,
    batch_size: int | None,
    shuffle: bool,
    shuffled_before: bool,
    seed: int | None,
    cache,
    augment,
    normalization,
    drop_remainder: bool,
    prefetch: bool,
    shuffle_buffer: int,
    late_resize=None,
) -> tf.data.Dataset:
    """Cache, shuffle, batch, augment, normalize and prefetch decoded elements."""
    if cache:
        ds = ds.cache("" if cache in (True, "memory") else os.fspath(cache))
    if shuffle and not shuffled_before:
        ds = ds.shuffle(max(1, min(n, shuffle_buffer)), seed=seed, reshuffle_each_iteration=True)
    layers, mix = make_augmentation(augment, seed)
    if mix is not None and (not labeled or batch_size is None):
        raise SpecError("mixup/cutmix need labels and batches (batch_size not None)")
    if late_resize is not None:
        # Every image is smaller than the output: augment at the source size, then
        # upsample (the same transformations on far fewer pixels).
        ds = _augment(ds, _augmenter(layers, None), labeled, seed)
        if labeled:
            ds = ds.map(lambda x, y: (late_resize(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(late_resize, num_parallel_calls=tf.data.AUTOTUNE)
        layers = []
    if batch_size is not None:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if labeled and (label_mode == "categorical" or mix is not None):
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, num_classes, dtype=tf.float32)))
    if layers or mix is not None:
        ds = _augment(ds, _augmenter(layers, mix), labeled, seed)
    if normalization is not None:
        if labeled:
            ds = ds.map(lambda x, y: (normalization(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(normalization, num_parallel_calls=tf.data.AUTOTUNE)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


def _augment(ds, apply, labeled: bool, seed: int | None) -> tf.data.Dataset:
    calls = tf.data.AUTOTUNE
    if seed is None:
        return ds.map(
            (lambda x, y: apply(x, y, None)) if labeled else (lambda x: apply(x, None, None)),
            num_parallel_calls=calls,
        )
    # One stateless seed per element (or batch) from a seeded stream: parallel calls
    # stay reproducible, and every epoch draws new transformations.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds)
    return ds.map(
        (lambda xy, s: apply(xy[0], xy[1], s)) if labeled else (lambda x, s: apply(x, None, s)),
        num_parallel_calls=calls,
    )


class _SeedStream(keras.random.SeedGenerator):
    """Stateless seeds derived from one per-batch seed tensor: a distinct one per draw."""

    def __init__(self, base):  # no state variable: nothing is updated across calls
        self._base = tf.cast(base, tf.int64)
        self._count = 0

    def next(self, ordered=True):
        self._count += 1
        return tf.stack([self._base[0], self._base[1] + self._count])


def _augmenter(layers, mix):
    def transformable(layer) -> bool:
        return hasattr(layer, "get_random_transformation") and hasattr(layer, "transform_images")

    def apply(x, y, seed):
        x = tf.cast(x, tf.float32)
        stream = None if seed is None else _SeedStream(seed)
        for layer in layers:
            if stream is not None and transformable(layer):
                t = layer.get_random_transformation(x, training=True, seed=stream)
                x = layer.transform_images(x, t, training=True)
            else:
                x = layer(x, training=True)
        if mix is not None:
            data = {"images": x, "labels": y}
            t = mix.get_random_transformation(data, training=True, seed=stream)
            x = mix.transform_images(x, t, training=True)
            y = mix.transform_labels(y, t, training=True)
        return x if y is None else (x, y)

    return apply


def _decode_fn(channels: int, max_pixels, pre: ImagePreprocessing | None, report, on_error):
    def pil_decode(path_bytes):
        path = path_bytes.decode()
        try:
            return decode_image_file(path, channels, max_pixels)
        except ImageDecodeError as exc:
            if on_error == "raise":
                raise
            report.add(path, str(exc).split(": ", 1)[-1])
            return np.zeros((0, 0, channels), np.uint8)

    def decode(path, branch):
        def pil():
            return tf.numpy_function(pil_decode, [path], tf.uint8, stateful=False)

        def png():
            return tf.io.decode_png(tf.io.read_file(path), channels=channels)

        def jpeg(ratio):
            return lambda: tf.io.decode_jpeg(tf.io.read_file(path), channels=channels, ratio=ratio)

        image = tf.switch_case(branch, [pil, png] + [jpeg(r) for r in _JPEG_RATIOS])
        image.set_shape([None, None, channels])
        return image

    def resize(image):
        if pre is None:
            return image
        return _to_uint8(pre.resize(image))

    return decode, resize


def _file_pipeline(
    paths: list[str],
    labels: list[int] | None,
    infos: list[ImageInfo],
    *,
    training: bool,
    num_classes: int,
    opts: dict,
    report: SkipReport,
) -> tf.data.Dataset:
    channels = COLOR_MODES[opts["color_mode"]]
    pre = opts["_pre"]
    target = _resize_target(pre)
    branches = [_branch(info, target) for info in infos]
    decode, resize = _decode_fn(channels, opts["max_pixels"], pre, report, opts["on_error"])
    late_resize = None
    if (
        training
        and target is not None
        and opts["augment"]
        and all(i.height <= target[0] and i.width <= target[1] for i in infos)
    ):
        late_resize, resize = pre.resize, (lambda image: image)
    labeled = labels is not None
    columns = (paths, np.asarray(branches, np.int32))
    if labeled:
        columns = columns + (np.asarray(labels, np.int32),)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    shuffle = opts["shuffle"] and training
    shuffled_before = shuffle and not opts["cache"]
    if shuffled_before:  # cheap: shuffle file names, not pixels
        ds = ds.shuffle(len(paths), seed=opts["seed"], reshuffle_each_iteration=True)
    calls = opts["num_parallel_calls"]
    late_failures = any(b == _BRANCH_PIL for b in branches)  # these come back empty
    if labeled:
        ds = ds.map(lambda p, b, y: (decode(p, b), y), num_parallel_calls=calls)
        if late_failures:
            ds = ds.filter(lambda x, y: tf.size(x) > 0)
        ds = ds.map(lambda x, y: (resize(x), y), num_parallel_calls=calls)
    else:
        ds = ds.map(decode, num_parallel_calls=calls)
        if late_failures:
            ds = ds.filter(lambda x: tf.size(x) > 0)
        ds = ds.map(resize, num_parallel_calls=calls)
    return _finish(
        ds,
        len(paths),
        labeled=labeled,
        label_mode=opts["label_mode"],
        num_classes=num_classes,
        batch_size=opts["batch_size"],
        shuffle=shuffle,
        shuffled_before=shuffled_before,
        seed=opts["seed"],
        cache=opts["cache"],
        augment=opts["augment"] if training else None,
        normalization=opts["_normalization"],
        drop_remainder=opts["drop_remainder"],
        prefetch=opts["prefetch"],
        shuffle_buffer=opts["shuffle_buffer"],
        late_resize=late_resize,
    )


def _decorate(ds, **attrs):
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def compute_mean_std(data, max_batches: int | None = None) -> dict[str, list[float]]:
    """Per-channel mean and standard deviation of images, in pixel units (0..255).

    The result plugs into ``normalize=`` of the pipelines (or into
    :class:`keras_cnnkit.layers.Normalize`) as ``{"mean": [...], "std": [...]}``.

    Args:
        data: An array ``(n, height, width, channels)``, or a ``tf.data.Dataset`` of
            images or ``(images, labels)``, batched or not.
        max_batches: Read at most this many elements of a dataset (``None``: all).

    Returns:
        ``{"mean": [...], "std": [...]}``, one value per channel.

    Raises:
        DataError: If there are no images or they hold NaN or infinity.

    Example:
        >>> import numpy as np
        >>> x = np.stack([np.zeros((2, 2, 1)), np.full((2, 2, 1), 2.0)])
        >>> compute_mean_std(x)
        {'mean': [1.0], 'std': [1.0]}
    """
    total = total_sq = None
    count = 0

    def add(batch):
        nonlocal total, total_sq, count
        arr = np.asarray(batch, np.float64)
        arr = arr.reshape(-1, arr.shape[-1])
        if not np.isfinite(arr).all():
            raise DataError("compute_mean_std: the images hold NaN or infinite values")
        s, sq = arr.sum(axis=0), (arr * arr).sum(axis=0)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += arr.shape[0]

    if isinstance(data, tf.data.Dataset):
        for i, element in enumerate(data):
            if max_batches is not None and i >= max_batches:
                break
            add(element[0] if isinstance(element, tuple) else element)
    else:
        arr = np.asarray(data)
        if arr.ndim != 4 or arr.shape[0] == 0:
            raise DataError(
                f"compute_mean_std: expected (n, h, w, c) images, got shape {arr.shape}"
            )
        for start in range(0, arr.shape[0], 1024):
            add(arr[start : start + 1024])
    if not count:
        raise DataError("compute_mean_std: no images to compute the mean and std from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
    std = np.where(std < 1e-6, 1.0, std)
    return {"mean": [round(float(v), 6) for v in mean], "std": [round(float(v), 6) for v in std]}


def _options(**kw) -> dict:
    backend = keras.backend.backend()
    if backend != "tensorflow":
        # Keras layers (resize, normalization, augmentation) run inside tf.data's graph,
        # which only the TensorFlow backend can trace.
        raise ConfigError(
            f"keras_cnnkit.preprocessing pipelines need the TensorFlow backend, and Keras "
            f"runs on {backend!r}: set KERAS_BACKEND=tensorflow, or give the model arrays "
            "(a .npz file in a training config)"
        )
    _check_common(
        kw["on_error"],
        kw["color_mode"],
        kw["label_mode"],
        kw["validation_split"],
        kw["subset"],
        kw["batch_size"],
        kw["cache"],
    )
    if kw["max_pixels"] is not None and int(kw["max_pixels"]) <= 0:
        raise SpecError(f"max_pixels must be positive or None, got {kw['max_pixels']!r}")
    if kw["image_size"] is None:
        kw["_pre"] = None
        if kw["resize_mode"] != "stretch" or kw["center_crop"] is not None:
            raise SpecError("resize_mode and center_crop need an image_size")
    else:
        kw["_pre"] = ImagePreprocessing(
            check_image_size(kw["image_size"]),
            resize_mode=kw["resize_mode"],
            interpolation=kw["interpolation"],
            center_crop=kw["center_crop"],
            antialias=kw["antialias"],
        )
    if kw["normalize"] != "dataset":
        kw["_normalization"] = make_normalize(kw["normalize"])
    make_augmentation(kw["augment"], kw["seed"])  # validate early
    return kw


def _serving_layer(opts: dict, normalization) -> ImagePreprocessing | None:
    pre = opts["_pre"]
    if pre is None:
        return None
    normalize = None
    if normalization is not None:
        config = normalization.get_config()
        normalize = {k: config[k] for k in ("scale", "offset", "mean", "std", "channel_order")}
    return ImagePreprocessing(
        pre.image_size,
        resize_mode=pre.resize_mode,
        interpolation=pre.interpolation,
        center_crop=pre.center_crop,
        antialias=pre.antialias,
        normalize=normalize,
    )


def _build_files(
    paths: list[str],
    labels: list[int] | None,
    keys: list[str],
    class_names: list[str] | None,
    opts: dict,
    report: SkipReport,
):
    infos = _scan(paths, opts["max_pixels"], opts["on_error"], report)
    keep = [i for i, info in enumerate(infos) if info is not None]
    if not keep:
        raise DataError(f"no readable images among {len(paths)} file(s):\n{report.summary()}")
    split = opts["validation_split"]
    seed = 0 if opts["seed"] is None else opts["seed"]
    parts = {"training": keep}
    if split is not None:
        val = {i for i in keep if in_validation(keys[i], split, seed)}
        parts = {
            "training": [i for i in keep if i not in val],
            "validation": [i for i in keep if i in val],
        }
        wanted = ("training", "validation") if opts["subset"] == "both" else (opts["subset"],)
        for name in wanted:
            if not parts[name]:
                raise DataError(
                    f"validation_split={split} leaves the {name} subset empty "
                    f"({len(keep)} readable image(s))"
                )
    else:
        wanted = ("training",)
    num_classes = len(class_names) if class_names else 0

    def make(name: str, training: bool, o: dict):
        idx = parts[name]
        return _file_pipeline(
            [paths[i] for i in idx],
            None if labels is None else [labels[i] for i in idx],
            [infos[i] for i in idx],
            training=training,
            num_classes=num_classes,
            opts=o,
            report=report,
        ), [paths[i] for i in idx]

    if opts["normalize"] == "dataset":
        plain = dict(opts, augment=None, shuffle=False, cache=None, _normalization=None)
        plain["batch_size"] = 64
        stats_ds, _ = make("training", False, plain)
        opts["_normalization"] = make_normalize(compute_mean_std(stats_ds))
    out = []
    for name in wanted:
        training = name == "training"
        o = opts if training else dict(opts, shuffle=False)
        ds, kept = make(name, training, o)
        out.append(
            _decorate(
                ds,
                class_names=class_names,
                file_paths=kept,
                report=report,
                normalization=opts["_normalization"],
                preprocessing_layer=_serving_layer(opts, opts["_normalization"]),
            )
        )
    return tuple(out) if len(out) == 2 else out[0]


_COMMON_DOC = """
        image_size: Output ``(height, width)`` (or an int for a square).
        color_mode: ``"rgb"`` (3 channels) or ``"grayscale"`` (1 channel).
        resize_mode: ``"stretch"``, ``"crop"`` (center-crop to the target aspect ratio
            first) or ``"pad"`` (pad to it first).
        interpolation: Resizing interpolation (``"bilinear"``, ``"bicubic"``, ...).
        center_crop: Keep this central fraction after resizing to
            ``image_size / center_crop`` (e.g. 0.875), or ``None``.
        antialias: Antialias when downsampling.
        augment: Training-only augmentation: a dict (see :func:`make_augmentation`) or
            a list of Keras preprocessing layers. Never applied to the validation subset.
        normalize: ``None`` (pixels stay 0..255), a preset of
            :data:`keras_cnnkit.layers.PRESETS`, ``"dataset"`` (mean/std computed from the
            training images) or a dict of :class:`~keras_cnnkit.layers.Normalize` arguments.
        batch_size: Images per batch, or ``None`` for single images.
        shuffle: Shuffle the training images, reshuffled every epoch.
        seed: Seed of shuffling, augmentation and the validation partition.
        cache: ``None``, ``"memory"``, or a file path prefix for ``Dataset.cache``: the
            decoded, resized images are kept after the first epoch.
        prefetch: Prefetch batches in the background.
        validation_split: Share of the images held out, by a stable seeded partition.
        subset: ``"training"``, ``"validation"`` or ``"both"`` (with ``validation_split``).
        on_error: ``"raise"``: a bad file raises :class:`~keras_cnnkit.errors.ImageDecodeError`
            naming it. ``"skip"``: the file is dropped and recorded in ``dataset.report``.
        max_pixels: Largest ``width * height`` accepted (decompression-bomb guard), or ``None``.
        drop_remainder: Drop the last, smaller batch.
        shuffle_buffer: Shuffle buffer (in images) when shuffling after ``cache``.
        num_parallel_calls: Parallel decode calls (``tf.data.AUTOTUNE`` by default)."""


def from_files(
    paths: Sequence[str | os.PathLike],
    labels: Sequence[int] | None = None,
    *,
    class_names: Sequence[str] | None = None,
    label_mode: str | None = "int",
    image_size: int | Sequence[int] | None = (224, 224),
    color_mode: str = "rgb",
    resize_mode: str = "stretch",
    interpolation: str = "bilinear",
    center_crop: float | None = None,
    antialias: bool = False,
    augment: Mapping | Sequence | None = None,
    normalize: str | dict | None = None,
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    cache: str | os.PathLike | None = None,
    prefetch: bool = True,
    validation_split: float | None = None,
    subset: str | None = None,
    on_error: str = "raise",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    drop_remainder: bool = False,
    shuffle_buffer: int = 1024,
    num_parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Build a pipeline from a list of image files and their integer labels.

    Args:
        paths: Image files.
        labels: One integer label per file, or ``None`` for an unlabeled pipeline.
        class_names: Names of the classes (``labels`` index into it); optional.
        label_mode: ``"int"``, ``"categorical"`` (one-hot) or ``None`` (images only).
    {common}

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` (or images), ready for
        ``model.fit``; a ``(training, validation)`` pair with ``subset="both"``. Each
        carries ``report`` (a :class:`SkipReport`), ``file_paths``, ``class_names``,
        ``normalization`` and ``preprocessing_layer`` (an :class:`ImagePreprocessing`
        with the same resize and normalization, to put inside a model).

    Raises:
        DataError: If ``paths`` is empty, ``labels`` has another length or a label is
            out of range, or no file is readable.
        ImageDecodeError: With ``on_error="raise"``, for the first bad file (named).
        SpecError: If an option is invalid.

    Example:
        >>> import os, tempfile
        >>> from PIL import Image
        >>> root = tempfile.mkdtemp()
        >>> files = [os.path.join(root, f"{i}.png") for i in range(4)]
        >>> for f in files:
        ...     Image.new("RGB", (12, 10)).save(f)
        >>> ds = from_files(files, [0, 1, 0, 1], image_size=8, batch_size=2)
        >>> images, labels = next(iter(ds))
        >>> tuple(images.shape), images.dtype.name
        ((2, 8, 8, 3), 'uint8')
    """
    opts = _options(**{k: v for k, v in locals().items() if k not in ("paths", "labels")})
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise DataError("from_files: paths is empty")
    if label_mode is None:
        labels = None
    elif labels is None:
        raise DataError(f"from_files: labels is None but label_mode={label_mode!r}; pass labels")
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(paths):
            raise DataError(
                f"from_files: {len(paths)} paths but {len(labels)} labels; they must match"
            )
        try:
            labels = [int(v) for v in labels]
        except (TypeError, ValueError) as exc:
            raise DataError(f"from_files: labels must be integers, got {labels[:5]!r}...") from exc
        if min(labels) < 0:
            raise DataError(f"from_files: labels must be >= 0, got {min(labels)}")
        n_classes = max(labels) + 1
        if class_names is not None:
            class_names = list(class_names)
            if max(labels) >= len(class_names):
                raise DataError(
                    f"from_files: label {max(labels)} out of range for "
                    f"{len(class_names)} class_names"
                )
        else:
            class_names = [str(i) for i in range(n_classes)]
    report = SkipReport()
    return _build_files(paths, labels, list(paths), class_names, opts, report)


def from_directory(
    root: str | os.PathLike,
    *,
    labels: str | None = "inferred",
    class_names: Sequence[str] | None = None,
    label_mode: str | None = "int",
    image_size: int | Sequence[int] | None = (224, 224),
    color_mode: str = "rgb",
    resize_mode: str = "stretch",
    interpolation: str = "bilinear",
    center_crop: float | None = None,
    antialias: bool = False,
    augment: Mapping | Sequence | None = None,
    normalize: str | dict | None = None,
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    cache: str | os.PathLike | None = None,
    prefetch: bool = True,
    validation_split: float | None = None,
    subset: str | None = None,
    on_error: str = "raise",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    drop_remainder: bool = False,
    shuffle_buffer: int = 1024,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    follow_links: bool = False,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Build a pipeline from a folder of class folders (``root/<class>/<image>``).

    Class names are the sub-folder names, sorted (or ``class_names``, in the given
    order, which sets the label of each). Images are found recursively inside each
    class folder, by extension (:data:`IMAGE_EXTENSIONS`, any case). With
    ``labels=None`` every image under ``root`` is used, unlabeled.

    Args:
        root: The folder.
        labels: ``"inferred"`` (from the class folders) or ``None`` (unlabeled).
        class_names: Class folders to use, in label order; default all, sorted.
        label_mode: ``"int"``, ``"categorical"`` (one-hot) or ``None`` (images only).
    {common}
        follow_links: Follow symbolic links to folders.

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` (or images), ready for
        ``model.fit``; a ``(training, validation)`` pair with ``subset="both"``. Each
        carries ``class_names``, ``file_paths``, ``report`` (a :class:`SkipReport`),
        ``normalization`` and ``preprocessing_layer``.

    Raises:
        DataError: If ``root`` is missing or holds no images, a class folder is missing,
            or (with ``on_error="raise"``) a class folder is empty.
        ImageDecodeError: With ``on_error="raise"``, for the first bad file (named).
        SpecError: If an option is invalid.

    Example:
        >>> import os, tempfile
        >>> from PIL import Image
        >>> root = tempfile.mkdtemp()
        >>> for name in ("cat", "dog"):
        ...     os.makedirs(os.path.join(root, name))
        ...     Image.new("RGB", (12, 10)).save(os.path.join(root, name, "a.jpg"))
        >>> ds = from_directory(root, image_size=(8, 8), batch_size=2, seed=0)
        >>> ds.class_names
        ['cat', 'dog']
    """
    opts = _options(
        **{k: v for k, v in locals().items() if k not in ("root", "labels", "follow_links")}
    )
    if labels not in ("inferred", None):
        raise SpecError(f"labels must be 'inferred' or None, got {labels!r}; use from_files")
    root_path = pathlib.Path(root)
    if not root_path.is_dir():
        raise DataError(f"from_directory: {root_path} is not a folder")
    report = SkipReport()

    def images_in(folder: pathlib.Path) -> list[str]:
        found = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow_links):
            dirnames.sort()
            found += [
                os.path.join(dirpath, f)
                for f in sorted(filenames)
                if f.lower().endswith(IMAGE_EXTENSIONS)
            ]
        return found

    paths: list[str] = []
    file_labels: list[int] | None = []
    if labels is None or label_mode is None:
        paths = images_in(root_path)
        file_labels = None
        class_names = None
    else:
        if class_names is None:
            class_names = sorted(p.name for p in root_path.iterdir() if p.is_dir())
        else:
            class_names = list(class_names)
            missing = [c for c in class_names if not (root_path / c).is_dir()]
            if missing:
                raise DataError(
                    f"from_directory: class folder(s) {missing} not found in {root_path}"
                )
        if not class_names:
            raise DataError(f"from_directory: {root_path} has no class folders")
        for label, name in enumerate(class_names):
            found = images_in(root_path / name)
            if not found:
                if opts["on_error"] == "raise":
                    raise DataError(
                        f"from_directory: class folder {root_path / name} contains no images "
                        f"(extensions {', '.join(IMAGE_EXTENSIONS)})"
                    )
                report.add(str(root_path / name), "class folder contains no images")
            paths += found
            file_labels += [label] * len(found)
    if not paths:
        raise DataError(
            f"from_directory: no images found under {root_path} "
            f"(extensions {', '.join(IMAGE_EXTENSIONS)})"
        )
    keys = [pathlib.Path(p).relative_to(root_path).as_posix() for p in paths]
    return _build_files(paths, file_labels, keys, class_names, opts, report)


from_files.__doc__ = from_files.__doc__.replace("    {common}", _COMMON_DOC.strip("\n"))
from_directory.__doc__ = from_directory.__doc__.replace("    {common}", _COMMON_DOC.strip("\n"))


def _check_arrays(x, y, label_mode, on_error, report) -> tuple[np.ndarray, np.ndarray | None]:
    x = np.asarray(x)
    if (
        x.dtype == object
        or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating))
        or x.dtype == np.bool_
    ):
        raise DataError(f"from_arrays: x must hold uint8 or float pixels, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise DataError(
            f"from_arrays: x must have shape (n, height, width, channels) or (n, height, width), "
            f"got rank {x.ndim} shape {x.shape}"
        )
    if x.shape[0] == 0:
        raise DataError("from_arrays: x holds no images")
    if x.shape[-1] not in (1, 3):
        raise DataError(f"from_arrays: x must have 1 or 3 channels, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8:
        if x.min() < 0 or x.max() > 255:
            raise DataError(
                f"from_arrays: integer x must be within 0..255, got {x.min()}..{x.max()}"
            )
        x = x.astype(np.uint8)
    if y is not None and label_mode is not None:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DataError(f"from_arrays: y must have shape (n,) or (n, 1), got {y.shape}")
        if len(y) != len(x):
            raise DataError(f"from_arrays: {len(x)} images in x but {len(y)} labels in y")
        if not np.issubdtype(y.dtype, np.integer):
            if not (np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0)):
                raise DataError(f"from_arrays: y must hold integer labels, got dtype {y.dtype}")
        if y.min() < 0:
            raise DataError(f"from_arrays: labels must be >= 0, got {y.min()}")
        y = y.astype(np.int32)
    else:
        y = None
    keep = np.ones(x.shape[0], bool)
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
        if bad.any():
            idx = np.flatnonzero(bad)
            if on_error == "raise":
                raise DataError(
                    f"from_arrays: x holds NaN or infinite values in {len(idx)} image(s), "
                    f"first x[{idx[0]}]"
                )
            for i in idx:
                report.add(f"x[{i}]", "image holds NaN or infinite values")
            keep &= ~bad
        x = x.astype(np.float32)
    return x, y, keep


def from_arrays(
    x,
    y=None,
    *,
    class_names: Sequence[str] | None = None,
    label_mode: str | None = "int",
    image_size: int | Sequence[int] | None = None,
    color_mode: str = "rgb",
    resize_mode: str = "stretch",
    interpolation: str = "bilinear",
    center_crop: float | None = None,
    antialias: bool = False,
    augment: Mapping | Sequence | None = None,
    normalize: str | dict | None = None,
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    cache: str | os.PathLike | None = None,
    prefetch: bool = True,
    validation_split: float | None = None,
    subset: str | None = None,
    on_error: str = "raise",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    drop_remainder: bool = False,
    shuffle_buffer: int = 1024,
    num_parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Build a pipeline from in-memory images, e.g. the CIFAR-10 arrays.

    ``x`` holds pixels in 0..255 (``uint8``, integers or floats); ``image_size=None``
    keeps their size. With ``on_error="skip"`` images holding NaN are dropped and
    recorded in ``dataset.report`` as ``x[i]``.

    Args:
        x: Images ``(n, height, width, channels)`` or ``(n, height, width)``.
        y: Integer labels ``(n,)`` or ``(n, 1)``, or ``None``.
        class_names: Names of the classes; optional.
        label_mode: ``"int"``, ``"categorical"`` (one-hot) or ``None`` (images only).
    {common}

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` (or images); a
        ``(training, validation)`` pair with ``subset="both"``.

    Raises:
        DataError: If ``x`` has the wrong rank, dtype or channels, holds NaN (with
            ``on_error="raise"``), or ``y`` does not match it.
        SpecError: If an option is invalid.

    Example:
        >>> import numpy as np
        >>> x = np.zeros((10, 32, 32, 3), "uint8")
        >>> ds = from_arrays(x, np.arange(10) % 2, batch_size=4, normalize="unit")
        >>> images, labels = next(iter(ds))
        >>> tuple(images.shape), images.dtype.name
        ((4, 32, 32, 3), 'float32')
    """
    opts = _options(**{k: v for k, v in locals().items() if k not in ("x", "y")})
    report = SkipReport()
    if y is None and label_mode is not None:
        label_mode = opts["label_mode"] = None
    x, y, keep = _check_arrays(x, y, label_mode, on_error, report)
    n = len(x)
    seed_ = 0 if seed is None else seed
    idx_all = np.flatnonzero(keep)
    if not len(idx_all):
        raise DataError(f"from_arrays: no usable images:\n{report.summary()}")
    parts = {"training": idx_all}
    wanted = ("training",)
    if validation_split is not None:
        val = np.array([in_validation(f"x[{i}]", validation_split, seed_) for i in idx_all], bool)
        parts = {"training": idx_all[~val], "validation": idx_all[val]}
        wanted = ("training", "validation") if subset == "both" else (subset,)
        for name in wanted:
            if not len(parts[name]):
                raise DataError(
                    f"validation_split={validation_split} leaves {name} empty ({n} images)"
                )
    num_classes = (
        len(class_names) if class_names is not None else (int(y.max()) + 1 if y is not None else 0)
    )
    channels = COLOR_MODES[color_mode]
    pre = opts["_pre"]

    def convert(image):
        if image.shape[-1] != channels:
            if channels == 3:
                image = tf.image.grayscale_to_rgb(image)
            else:
                image = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))
        if pre is not None:
            image = pre.resize(image)
        if image.dtype != x.dtype or pre is not None:
            image = _to_uint8(image) if x.dtype == np.uint8 else tf.cast(image, tf.float32)
        return image

    def make(name, training, o):
        idx = parts[name]
        labeled = y is not None
        columns = (x[idx], y[idx]) if labeled else x[idx]
        ds = tf.data.Dataset.from_tensor_slices(columns)
        do_shuffle = o["shuffle"] and training
        if labeled:
            ds = ds.map(lambda a, b: (convert(a), b), num_parallel_calls=o["num_parallel_calls"])
        else:
            ds = ds.map(convert, num_parallel_calls=o["num_parallel_calls"])
        return _finish(
            ds,
            len(idx),
            labeled=labeled,
            label_mode=o["label_mode"],
            num_classes=num_classes,
            batch_size=o["batch_size"],
            shuffle=do_shuffle,
            shuffled_before=False,
            seed=o["seed"],
            cache=o["cache"],
            augment=o["augment"] if training else None,
            normalization=o["_normalization"],
            drop_remainder=o["drop_remainder"],
            prefetch=o["prefetch"],
            shuffle_buffer=max(o["shuffle_buffer"], len(idx)),
        )

    if normalize == "dataset":
        plain = dict(opts, augment=None, shuffle=False, cache=None, _normalization=None)
        plain["batch_size"] = 256
        opts["_normalization"] = make_normalize(compute_mean_std(make("training", False, plain)))
    out = []
    for name in wanted:
        training = name == "training"
        ds = make(name, training, opts if training else dict(opts, shuffle=False))
        out.append(
            _decorate(
                ds,
                class_names=None if class_names is None else list(class_names),
                indices=parts[name].tolist(),
                report=report,
                normalization=opts["_normalization"],
                preprocessing_layer=_serving_layer(opts, opts["_normalization"]),
            )
        )
    return tuple(out) if len(out) == 2 else out[0]


from_arrays.__doc__ = from_arrays.__doc__.replace("    {common}", _COMMON_DOC.strip("\n"))
