"""Image pipelines: folders, file lists or arrays to shuffled, augmented ``tf.data`` batches.

Every file is checked before the first epoch: its header (format, size, pixel limit) with
Pillow, then its data decoded once by the one decoder (:mod:`keras_cnnkit.data._decode`),
in parallel, so a broken file is named before training starts. The check records a
fingerprint of each file's bytes; during iteration a file whose bytes no longer match
(replaced after the pipeline was built) is decoded on a guarded path that turns any
failure into an :class:`~keras_cnnkit.errors.ImageDecodeError` naming it (``"raise"``)
or an entry in the report (``"skip"``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
import tensorflow as tf

from keras_cnnkit._deprecation import warn_deprecated
from keras_cnnkit.data._augment import (
    CROP_DRAWS,
    CropSpec,
    crop_spec,
    crop_window,
    flip_image,
    flip_mode,
    key_seed,
    make_augmentation,
)
from keras_cnnkit.data._config import (
    COLOR_MODES,
    DataConfig,
    check_raw_pixels,
    merge_config,
)
from keras_cnnkit.data._config import (
    data_config as resolve_data_config,
)
from keras_cnnkit.data._decode import (
    JPEG_RATIOS,
    _graph_only,
    _resize_target,
    check_decode,
    decode_planned,
    decode_window,
    preprocessing_layer,
    resize_float,
    resize_image,
    tensorflow_backend,
    to_uint8,
)
from keras_cnnkit.data._inspect import (
    DEFAULT_MAX_PIXELS,
    check_header,
    decode_error,
    display_path,
)
from keras_cnnkit.data._layers import ImagePreprocessing, make_normalize
from keras_cnnkit.data._listing import IMAGE_EXTENSIONS, class_folders, list_images
from keras_cnnkit.data._read import decode_bytes
from keras_cnnkit.data._report import SkipReport
from keras_cnnkit.data._split import array_keys, split_indices
from keras_cnnkit.errors import ConfigError, DataError, ImageDecodeError, SpecError

ON_ERROR = ("raise", "skip")
LABEL_MODES = ("int", "categorical", None)
SUBSETS = ("training", "validation", "both")

#: Buckets of the fingerprint that tells a file changed since the check.
_HASH_BUCKETS = 2**62

_DEFAULTS = {
    "image_size": (224, 224),
    "color_mode": "rgb",
    "resize_mode": "stretch",
    "interpolation": "bilinear",
    "antialias": False,
    "center_crop": None,
    "class_names": None,
}


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


def _options(where: str, defaults: Mapping | None = None, **kw) -> dict:
    backend = keras.backend.backend()
    if backend != "tensorflow" and kw["normalize"] is not None:
        # Resizing and augmentation run on their TensorFlow implementation under any
        # backend; the Normalize layer computes with the backend's own ops.
        raise ConfigError(
            f"{where}: normalize= needs the TensorFlow backend and Keras runs on "
            f"{backend!r}; leave it out and normalize inside the model"
        )
    config = kw.pop("data_config", None)
    config = None if config is None else resolve_data_config(config)
    if kw["normalize"] is not None:
        check_raw_pixels(kw["normalize"], config, where)
        warn_deprecated(
            f"the normalize argument of keras_cnnkit.data.{where}",
            since="0.1.0",
            alternative=(
                "raw pixels from the pipeline and normalization inside the model "
                "(keras_cnnkit.layers.Normalize, or ImagePreprocessing(normalize=...))"
            ),
            stacklevel=3,
        )
    kw = merge_config(kw, defaults or _DEFAULTS, config, where)
    kw["_model_config"] = config
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
    image_size = kw["image_size"]
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    kw["_config"] = DataConfig(
        image_size=None if image_size is None else tuple(image_size),
        color_mode=kw["color_mode"],
        resize_mode=kw["resize_mode"],
        interpolation=kw["interpolation"],
        antialias=kw["antialias"],
        center_crop=kw["center_crop"],
        class_names=None if config is None else config.class_names,
        preprocessing=None if config is None else config.preprocessing,
    )
    if kw["normalize"] != "dataset":
        kw["_normalization"] = make_normalize(kw["normalize"])
    make_augmentation(kw["augment"], kw["seed"])  # validate early
    if crop_spec(kw["augment"]) is not None and image_size is None and where != "from_arrays":
        raise SpecError(
            f"{where}: augment['crop'] needs an image_size (the window is resized to it), "
            "got image_size=None"
        )
    return kw


def _serving_layer(opts: dict, normalization) -> ImagePreprocessing | None:
    config = opts["_config"]
    if config.image_size is None:
        return None
    normalize = None
    if normalization is not None:
        cfg = normalization.get_config()
        normalize = {k: cfg[k] for k in ("scale", "offset", "mean", "std", "channel_order")}
    return preprocessing_layer(config, normalize)


# --------------------------------------------------------------------------- file check


def _check_files(
    paths: list[str], config: DataConfig, max_pixels, on_error: str, report: SkipReport
) -> list[tuple[int, int, int] | None]:
    """Check every file: header with Pillow, then one decode by the one decoder.

    Returns, per file, ``(fingerprint, height, width, is_jpeg, ratio, orientation)``:
    a fingerprint of its bytes, the decoded size (before resizing) and the decoder's plan
    (:func:`~keras_cnnkit.data._decode.plan_decode`), or ``None`` for a file left out
    (``on_error="skip"``).
    """

    def header(path):
        try:
            check_header(path, max_pixels)
            return None
        except ImageDecodeError as exc:
            return exc

    if len(paths) > 8:
        with ThreadPoolExecutor(max_workers=min(32, 2 * (os.cpu_count() or 1))) as pool:
            errors = list(pool.map(header, paths, chunksize=16))
    else:
        errors = [header(p) for p in paths]
    ok = [i for i, e in enumerate(errors) if e is None]
    decoded: dict[int, tuple[int, int, int]] = {}
    if ok:
        raw = [os.fsencode(paths[i]) for i in ok]
        ds = tf.data.Dataset.from_tensor_slices((np.asarray(ok, np.int64), raw))

        checker = _checker(config, max_pixels)

        def check(i, path):
            return (i,) + tuple(checker(tf.io.read_file(path)))

        ds = ds.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        for columns in ds.ignore_errors().batch(4096).as_numpy_iterator():
            for row in zip(*(c.tolist() for c in columns)):
                decoded[row[0]] = row[1:]
    out: list[tuple[int, int, int] | None] = []
    for i, path in enumerate(paths):
        err = errors[i]
        if err is None and i not in decoded:  # the decoder refused it: find out why, by name
            try:
                with open(path, "rb") as f:
                    data = f.read()
                decode_bytes(path, data, config, max_pixels, resize=False)
                err = decode_error(path, "cannot decode image")
            except ImageDecodeError as exc:
                err = exc
            except OSError as exc:
                err = decode_error(path, f"cannot read file ({exc.strerror or exc})")
        if err is not None:
            if on_error == "raise":
                raise err
            report.add(err.path, err.reason)
            out.append(None)
        else:
            out.append(decoded[i])
    return out


@functools.lru_cache(maxsize=32)
def _checker(config: DataConfig, max_pixels):
    """The check of one file's bytes, traced once per configuration."""

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
    def check(data):
        is_jpeg, ratio, orientation, height, width = check_decode(data, config, max_pixels)
        fingerprint = tf.strings.to_hash_bucket_fast(data, _HASH_BUCKETS)
        return fingerprint, height, width, is_jpeg, ratio, orientation

    return check


@functools.lru_cache(maxsize=32)
def _planned(config: DataConfig, resize: bool, formats: str = "any", oriented: bool = True):
    """Decoding (and resizing) checked bytes as planned, traced once per configuration."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([], tf.string),
            tf.TensorSpec([], tf.bool),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([], tf.int32),
        ],
        autograph=False,
    )
    def run(data, is_jpeg, ratio, orientation):
        plan = (is_jpeg, ratio, orientation)
        image = decode_planned(data, plan, config, formats=formats, oriented=oriented)
        return resize_image(image, config) if resize else image

    return run


def _cropping(
    config: DataConfig,
    spec: CropSpec,
    flip: str | None,
    formats: str = "any",
    oriented: bool = True,
    ratios: tuple[int, ...] = JPEG_RATIOS,
):
    """Decoding a random window of checked bytes, resized and flipped (``float32``).

    A plain function, traced into the pipeline's own map function: a nested
    ``tf.function`` call per image costs more than its tracing saves here.
    """

    @_graph_only
    def run(data, is_jpeg, orientation, u):
        plan = (is_jpeg, tf.constant(0), orientation)
        window = functools.partial(crop_window, u=u, spec=spec)
        image = decode_window(
            data, plan, window, config, formats=formats, oriented=oriented, ratios=ratios
        )
        return flip_image(resize_float(image, config), u, flip)

    return run


def crop_decoded(
    image: tf.Tensor, u: tf.Tensor, spec: CropSpec, flip: str | None, config: DataConfig
) -> tf.Tensor:
    """The crop stage on decoded pixels: a random window, resized, then flipped.

    The route of images that are already decoded (arrays, a cache, a file that changed
    after the check); files take the same window while decoding (:func:`_cropping`).
    Returns ``float32`` pixels (0..255, not rounded), as the other augmentations do.
    """
    shape = tf.shape(image)
    top, left, h, w = crop_window(shape[0], shape[1], u, spec)
    return flip_image(resize_float(image[top : top + h, left : left + w], config), u, flip)


def _crop_ratios(checked, config: DataConfig, spec: CropSpec) -> tuple[int, ...]:
    """The DCT scales that a crop window of the checked images can use."""
    target = _resize_target(config)
    if target is None:
        return (1,)
    usable = [1]
    for c in checked:
        if not c[3]:  # not a JPEG
            continue
        # the check recorded the decoded size and its DCT scale: the full size is at
        # most that size times the scale; the largest window is bounded by the crop spec
        h, w = c[1] * JPEG_RATIOS[c[4]], c[2] * JPEG_RATIOS[c[4]]
        area = spec.scale[1] * h * w
        wh, ww = min(h, (area / spec.ratio[0]) ** 0.5), min(w, (area * spec.ratio[1]) ** 0.5)
        usable += [r for r in JPEG_RATIOS if wh >= r * target[0] and ww >= r * target[1]]
    return JPEG_RATIOS[: JPEG_RATIOS.index(max(usable)) + 1]


def _draws(seed: tf.Tensor) -> tf.Tensor:
    """The uniform draws of one image's crop and flip from its stateless seed."""
    return tf.random.stateless_uniform([CROP_DRAWS], seed=seed)


def _element_seeds(seed: int | None) -> tf.data.Dataset:
    """One stateless seed per image from a seeded stream (new draws every epoch)."""
    stream = tf.data.Dataset.random(seed=key_seed(seed, "crop"), rerandomize_each_iteration=True)
    return stream.batch(2)


# --------------------------------------------------------------------------- errors mid-iteration


_CONVERTING: dict[type, type] = {}


def _subclass(base: type, name: str, methods: dict) -> type:
    """A subclass of ``base`` with ``methods`` (made once per base class)."""
    key = (base, name)
    if key not in _CONVERTING:
        _CONVERTING[key] = type(base.__name__, (base,), methods)
    return _CONVERTING[key]


def _converting_iterator(iterator, failures: list):
    """``iterator`` (a TensorFlow iterator, still one) whose Python ``next`` names a bad file.

    Only the eager ``__next__`` changes: a read that failed on a file turns into the
    library's error. Inside a ``tf.function`` (``model.fit``) the iterator is rebuilt from
    its components and runs as before.
    """
    base = type(iterator)

    def __next__(self):
        try:
            return base.__next__(self)
        except tf.errors.OpError as exc:
            if self._cnnkit_failures:
                raise self._cnnkit_failures[-1] from exc
            raise

    iterator.__class__ = _subclass(base, "iterator", {"__next__": __next__})
    iterator._cnnkit_failures = failures
    return iterator


def _converting(ds: tf.data.Dataset, failures: list) -> tf.data.Dataset:
    """``ds``, whose Python iteration raises ``ImageDecodeError`` for a file that fails."""
    base = type(ds)

    def __iter__(self):
        return _converting_iterator(base.__iter__(self), self._cnnkit_failures)

    ds.__class__ = _subclass(base, "dataset", {"__iter__": __iter__})
    ds._cnnkit_failures = failures
    return ds


# --------------------------------------------------------------------------- building


def _file_pipeline(
    paths: list[str],
    labels: list[int] | None,
    checked: list[tuple[int, int, int]],
    *,
    training: bool,
    num_classes: int,
    opts: dict,
    report: SkipReport,
    failures: list,
) -> tf.data.Dataset:
    config: DataConfig = opts["_config"]
    channels = config.channels
    max_pixels = opts["max_pixels"]
    on_error = opts["on_error"]
    target = config.image_size
    late_resize = None
    resize_now = True
    spec = crop_spec(opts["augment"]) if training else None
    flip = flip_mode(opts["augment"]) if training else None
    # The random crop is taken while decoding, unless decoded images are cached (then
    # after the cache, from the cached pixels).
    crop_now = spec is not None and not opts["cache"]
    if (
        training
        and not crop_now
        and target is not None
        and opts["augment"]
        and config.center_crop is None
        and all(c[1] <= target[0] and c[2] <= target[1] for c in checked)
    ):
        # Every image is smaller than the output: augment at the source size, then
        # upsample (the same transformations on far fewer pixels).
        late_resize = functools.partial(resize_float, config=config)
        resize_now = False

    def guarded(path_t, data_t):
        path = path_t.numpy()
        try:
            resize = resize_now and not crop_now
            return decode_bytes(path, data_t.numpy(), config, max_pixels, resize=resize)
        except ImageDecodeError as exc:
            if on_error == "raise":
                failures.append(exc)
                raise
            if report.reason(exc.path) is None:  # once, not once per epoch
                report.add(exc.path, exc.reason)
            return np.zeros((0, 0, channels), np.uint8)

    def read(path, fingerprint, is_jpeg, ratio, orientation, u=None):
        data = tf.io.read_file(path)
        same = tf.equal(tf.strings.to_hash_bucket_fast(data, _HASH_BUCKETS), fingerprint)

        def fast():  # the bytes that were checked: decode them as planned then
            if crop_now:
                return cropped(data, is_jpeg, orientation, u)
            return planned(data, is_jpeg, ratio, orientation)

        def slow():  # the file changed since the check: decode it where errors are caught
            image = tf.py_function(guarded, [path, data], tf.uint8)
            image.set_shape([None, None, channels])
            if crop_now:  # the same window of the whole image (empty: skipped)
                return tf.cond(
                    tf.size(image) > 0,
                    lambda: crop_decoded(image, u, spec, flip, config),
                    lambda: tf.zeros([0, 0, channels], tf.float32),
                )
            return image

        image = tf.cond(same, fast, slow)
        image.set_shape([None, None, channels])
        return image

    jpegs = sum(1 for c in checked if c[3])
    formats = "jpeg" if jpegs == len(checked) else "other" if jpegs == 0 else "any"
    turned = any(c[5] != 1 for c in checked)
    planned = _planned(config, resize_now, formats, turned)
    cropped = None
    if crop_now:
        cropped = _cropping(
            config, spec, flip, formats, turned, _crop_ratios(checked, config, spec)
        )

    def fix_shape(image):
        if (resize_now or crop_now) and target is not None:
            return tf.ensure_shape(image, [target[0], target[1], channels])
        return image

    labeled = labels is not None
    columns = (
        [os.fsencode(p) for p in paths],
        np.asarray([c[0] for c in checked], np.int64),
        np.asarray([c[3] for c in checked], bool),
        np.asarray([c[4] for c in checked], np.int32),
        np.asarray([c[5] for c in checked], np.int32),
    )
    if labeled:
        columns = columns + (np.asarray(labels, np.int32),)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    shuffle = opts["shuffle"] and training
    shuffled_before = shuffle and not opts["cache"]
    if shuffled_before:  # cheap: shuffle file names, not pixels
        ds = ds.shuffle(len(paths), seed=opts["seed"], reshuffle_each_iteration=True)
    calls = opts["num_parallel_calls"]
    skip = on_error == "skip"  # a failed read comes back empty: leave it out
    if crop_now:  # one seed per image, after the shuffle: the same seed, the same windows
        ds = tf.data.Dataset.zip(ds, _element_seeds(opts["seed"]))

    def load(*element):
        columns, u = (element[0], _draws(element[1])) if crop_now else (element, None)
        image = read(*columns[:5], u)
        if not skip:
            image = fix_shape(image)
        return (image, columns[5]) if labeled else image

    ds = ds.map(load, num_parallel_calls=calls)
    if skip:
        if labeled:
            ds = ds.filter(lambda x, y: tf.size(x) > 0)
            ds = ds.map(lambda x, y: (fix_shape(x), y), num_parallel_calls=calls)
        else:
            ds = ds.filter(lambda x: tf.size(x) > 0)
            ds = ds.map(fix_shape, num_parallel_calls=calls)
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
        config=config,
        cropped=crop_now,
    )


def _decorate(ds, **attrs):
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def _build_files(
    paths: list[str],
    labels: list[int] | None,
    keys: list[str],
    class_names: list[str] | None,
    opts: dict,
    report: SkipReport,
):
    config: DataConfig = opts["_config"]
    checked = _check_files(paths, config, opts["max_pixels"], opts["on_error"], report)
    keep = [i for i, c in enumerate(checked) if c is not None]
    if not keep:
        raise DataError(f"no readable images among {len(paths)} file(s):\n{report.summary()}")
    split = opts["validation_split"]
    seed = 0 if opts["seed"] is None else opts["seed"]
    parts = {"training": keep}
    wanted = ("training",)
    if split is not None:
        train_idx, val_idx = split_indices(
            [keys[i] for i in keep], float(split), seed, where="validation_split"
        )
        parts = {
            "training": [keep[i] for i in train_idx],
            "validation": [keep[i] for i in val_idx],
        }
        wanted = ("training", "validation") if opts["subset"] == "both" else (opts["subset"],)
    num_classes = len(class_names) if class_names else 0
    failures: list = []

    def make(name: str, training: bool, o: dict):
        idx = parts[name]
        ds = _file_pipeline(
            [paths[i] for i in idx],
            None if labels is None else [labels[i] for i in idx],
            [checked[i] for i in idx],
            training=training,
            num_classes=num_classes,
            opts=o,
            report=report,
            failures=failures,
        )
        return _converting(ds, failures), [paths[i] for i in idx]

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
                errors=failures,
                data_config=DataConfig(**{**config.to_dict(), "class_names": class_names or None}),
                normalization=opts["_normalization"],
                preprocessing_layer=_serving_layer(opts, opts["_normalization"]),
            )
        )
    return tuple(out) if len(out) == 2 else out[0]


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
    config: DataConfig | None = None,
    cropped: bool = False,
) -> tf.data.Dataset:
    """Cache, shuffle, crop, batch, augment, normalize and prefetch decoded elements.

    With a ``crop`` augmentation that the decode stage did not take (``cropped``), each
    decoded image is cropped, resized to ``config``'s size and flipped here.
    """
    if cache:
        ds = ds.cache("" if cache in (True, "memory") else os.fspath(cache))
    if shuffle and not shuffled_before:
        ds = ds.shuffle(max(1, min(n, shuffle_buffer)), seed=seed, reshuffle_each_iteration=True)
    layers, mix = make_augmentation(augment, seed)
    if mix is not None and (not labeled or batch_size is None):
        raise SpecError("mixup/cutmix need labels and batches (batch_size not None)")
    spec = crop_spec(augment)
    if spec is not None:
        late_resize = None  # the crop resizes each window to the output size
        if not cropped:
            flip = flip_mode(augment)
            ds = tf.data.Dataset.zip(ds, _element_seeds(seed))

            def crop(x, s):
                return crop_decoded(x, _draws(s), spec, flip, config)

            if labeled:
                ds = ds.map(
                    lambda xy, s: (crop(xy[0], s), xy[1]), num_parallel_calls=tf.data.AUTOTUNE
                )
            else:
                ds = ds.map(crop, num_parallel_calls=tf.data.AUTOTUNE)
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
        with tensorflow_backend(*layers, *([mix] if mix is not None else [])):
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
        normalize: Deprecated: normalization belongs inside the model (the models of this
            library carry their own). ``None`` keeps raw pixels (0..255); a preset of
            :data:`keras_cnnkit.layers.PRESETS`, ``"dataset"`` (mean/std of the training
            images) or a dict of :class:`~keras_cnnkit.layers.Normalize` arguments still
            works, with a warning, and is refused for a ``data_config`` model that
            normalizes itself.
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
        num_parallel_calls: Parallel decode calls (``tf.data.AUTOTUNE`` by default).
        data_config: A model, ``(model, metadata)`` or :class:`DataConfig`: its input
            size, colour mode, resize settings and class names replace the arguments
            above (an argument set to something else is refused)."""


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
    data_config=None,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Build a pipeline from a list of image files and, optionally, their integer labels.

    Args:
        paths: Image files.
        labels: One integer label per file, or ``None`` for an unlabeled pipeline of
            images only (whatever ``label_mode`` says).
        class_names: Names of the classes (``labels`` index into it); optional.
        label_mode: ``"int"``, ``"categorical"`` (one-hot) or ``None`` (images only).
    {common}

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` (or images), ready for
        ``model.fit``; a ``(training, validation)`` pair with ``subset="both"``. Each
        carries ``report`` (a :class:`SkipReport`), ``file_paths``, ``class_names``,
        ``data_config`` (the :class:`DataConfig` of its images),  ``normalization`` and
        ``preprocessing_layer`` (an :class:`ImagePreprocessing` with the same resize, to
        put inside a model).

    Raises:
        DataError: If ``paths`` is empty, ``labels`` has another length or a label is
            out of range, no file is readable, or ``normalize`` is given for a model
            (``data_config``) that normalizes its input itself.
        ImageDecodeError: With ``on_error="raise"``, for the first bad file (named),
            also during iteration for a file that changed after the check.
        SpecError: If an option is invalid or contradicts ``data_config``.

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
        >>> unlabeled = from_files(files, image_size=8, batch_size=4)
        >>> tuple(next(iter(unlabeled)).shape)
        (4, 8, 8, 3)
    """
    opts = _options(
        "from_files", **{k: v for k, v in locals().items() if k not in ("paths", "labels")}
    )
    class_names = opts["class_names"]
    paths = [os.fsdecode(p) if isinstance(p, bytes) else os.fspath(p) for p in paths]
    if not paths:
        raise DataError("from_files: paths is empty")
    if labels is None or label_mode is None:
        labels = None
        opts["label_mode"] = None
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
    elif class_names is not None:
        class_names = list(class_names)
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
    data_config=None,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Build a pipeline from a folder of class folders (``root/<class>/<image>``).

    Class names are the sub-folder names, sorted (or ``class_names``, in the given
    order, which sets the label of each). Images are found recursively inside each
    class folder, by extension (:data:`IMAGE_EXTENSIONS`, any case); hidden files and
    folders are left out. With ``labels=None`` every image under ``root`` is used,
    unlabeled.

    Args:
        root: The folder.
        labels: ``"inferred"`` (from the class folders) or ``None`` (unlabeled).
        class_names: Class folders to use, in label order; default all, sorted.
        label_mode: ``"int"``, ``"categorical"`` (one-hot) or ``None`` (images only).
    {common}
        follow_links: Follow symbolic links to folders (each real folder once, so a
            link loop cannot repeat files).

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` (or images), ready for
        ``model.fit``; a ``(training, validation)`` pair with ``subset="both"``. Each
        carries ``class_names``, ``file_paths``, ``report`` (a :class:`SkipReport`),
        ``data_config``, ``normalization`` and ``preprocessing_layer``.

    Raises:
        DataError: If ``root`` is missing or holds no images, a class folder is missing,
            (with ``on_error="raise"``) a class folder is empty, or ``normalize`` is given
            for a model (``data_config``) that normalizes its input itself.
        ImageDecodeError: With ``on_error="raise"``, for the first bad file (named),
            also during iteration for a file that changed after the check.
        SpecError: If an option is invalid or contradicts ``data_config``.

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
        "from_directory",
        **{k: v for k, v in locals().items() if k not in ("root", "labels", "follow_links")},
    )
    if labels not in ("inferred", None):
        raise SpecError(f"labels must be 'inferred' or None, got {labels!r}; use from_files")
    root_path = os.fspath(root)
    if not os.path.isdir(root_path):
        raise DataError(f"from_directory: {display_path(root_path)} is not a folder")
    report = SkipReport()
    paths: list[str] = []
    file_labels: list[int] | None = []
    if labels is None or label_mode is None:
        paths = list_images(root_path, follow_links=follow_links)
        file_labels = None
        class_names = None
        opts["label_mode"] = None
    else:
        class_names = class_folders(root_path, opts["class_names"], "from_directory")
        for label, name in enumerate(class_names):
            folder = os.path.join(root_path, name)
            found = list_images(folder, follow_links=follow_links)
            if not found:
                if opts["on_error"] == "raise":
                    raise DataError(
                        f"from_directory: class folder {display_path(folder)} contains no "
                        f"images (extensions {', '.join(IMAGE_EXTENSIONS)})"
                    )
                report.add(display_path(folder), "class folder contains no images")
            paths += found
            file_labels += [label] * len(found)
    if not paths:
        raise DataError(
            f"from_directory: no images found under {display_path(root_path)} "
            f"(extensions {', '.join(IMAGE_EXTENSIONS)})"
        )
    keys = [os.path.relpath(p, root_path).replace(os.sep, "/") for p in paths]
    return _build_files(paths, file_labels, keys, class_names, opts, report)


from_files.__doc__ = from_files.__doc__.replace("    {common}", _COMMON_DOC.strip("\n"))
from_directory.__doc__ = from_directory.__doc__.replace("    {common}", _COMMON_DOC.strip("\n"))


def _as_array(value, name: str) -> np.ndarray:
    """``np.asarray`` that names the argument when the input is ragged."""
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        shapes = {tuple(np.shape(v)) for v in value}
        if len(shapes) > 1:
            raise DataError(
                f"from_arrays: {name} is ragged: its items have different shapes "
                f"{sorted(shapes)[:4]}; resize them to one size first (or use from_files)"
            )
    try:
        arr = np.asarray(value)
    except ValueError as exc:
        raise DataError(
            f"from_arrays: {name} is ragged or not numeric ({exc}); give one array of "
            "equal-size items"
        ) from None
    if arr.dtype == object:
        raise DataError(
            f"from_arrays: {name} is ragged or holds objects (dtype object); give one array "
            "of equal-size items"
        )
    return arr


def _check_arrays(x, y, label_mode, on_error, report, class_names):
    x = _as_array(x, "x")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)) or (
        x.dtype == np.bool_
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
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise DataError(f"from_arrays: x holds empty images (shape {x.shape})")
    if x.shape[-1] not in (1, 3):
        raise DataError(f"from_arrays: x must have 1 or 3 channels, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer) and x.dtype != np.uint8:
        if x.min() < 0 or x.max() > 255:
            raise DataError(
                f"from_arrays: integer x must be within 0..255, got {x.min()}..{x.max()}"
            )
        x = x.astype(np.uint8)
    if y is not None and label_mode is not None:
        y = _as_array(y, "y")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DataError(f"from_arrays: y must have shape (n,) or (n, 1), got {y.shape}")
        if len(y) != len(x):
            raise DataError(f"from_arrays: {len(x)} images in x but {len(y)} labels in y")
        if not np.issubdtype(y.dtype, np.integer):
            if not (
                np.issubdtype(y.dtype, np.floating)
                and np.isfinite(y).all()
                and np.all(np.mod(y, 1) == 0)
            ):
                raise DataError(f"from_arrays: y must hold integer labels, got dtype {y.dtype}")
        if y.min() < 0:
            raise DataError(f"from_arrays: labels in y must be >= 0, got {y.min()}")
        if class_names is not None and y.max() >= len(class_names):
            raise DataError(
                f"from_arrays: label {int(y.max())} in y is out of range for "
                f"{len(class_names)} class_names"
            )
        y = y.astype(np.int32)
    else:
        y = None
    keep = np.ones(x.shape[0], bool)
    if np.issubdtype(x.dtype, np.floating):
        flat = x.reshape(x.shape[0], -1)
        bad = ~np.isfinite(flat).all(axis=1)
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
        finite = flat[keep]
        if finite.size and (finite.min() < 0.0 or finite.max() > 255.0):
            raise DataError(
                f"from_arrays: float x must hold pixels within 0..255 (the scale the pipeline "
                f"and the library's models take), got {finite.min():g}..{finite.max():g}"
            )
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
    data_config=None,
) -> tf.data.Dataset | tuple[tf.data.Dataset, tf.data.Dataset]:
    """Build a pipeline from in-memory images, e.g. the CIFAR-10 arrays.

    ``x`` holds pixels in 0..255 (``uint8``, integers or floats); ``image_size=None``
    keeps their size. With ``on_error="skip"`` images holding NaN are dropped and
    recorded in ``dataset.report`` as ``x[i]``. The validation split is the one of
    :func:`split_indices` over the keys ``"x[0]"``, ``"x[1]"``...

    Args:
        x: Images ``(n, height, width, channels)`` or ``(n, height, width)``.
        y: Integer labels ``(n,)`` or ``(n, 1)``, or ``None``.
        class_names: Names of the classes; labels must index into it.
        label_mode: ``"int"``, ``"categorical"`` (one-hot) or ``None`` (images only).
    {common}

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` (or images); a
        ``(training, validation)`` pair with ``subset="both"``.

    Raises:
        DataError: If ``x`` is ragged, has the wrong rank, dtype or channels, holds empty
            images, pixels outside 0..255 or NaN (with ``on_error="raise"``), or ``y`` is
            ragged, does not match it or holds a label outside ``class_names``.
        SpecError: If an option is invalid.

    Example:
        >>> import numpy as np
        >>> x = np.zeros((10, 32, 32, 3), "uint8")
        >>> ds = from_arrays(x, np.arange(10) % 2, batch_size=4)
        >>> images, labels = next(iter(ds))
        >>> tuple(images.shape), images.dtype.name
        ((4, 32, 32, 3), 'uint8')
    """
    opts = _options(
        "from_arrays",
        dict(_DEFAULTS, image_size=None),
        **{k: v for k, v in locals().items() if k not in ("x", "y")},
    )
    class_names = opts["class_names"]
    report = SkipReport()
    if y is None and label_mode is not None:
        label_mode = opts["label_mode"] = None
    x, y, keep = _check_arrays(x, y, label_mode, on_error, report, class_names)
    seed_ = 0 if seed is None else seed
    idx_all = np.flatnonzero(keep)
    if not len(idx_all):
        raise DataError(f"from_arrays: no usable images:\n{report.summary()}")
    parts = {"training": idx_all}
    wanted = ("training",)
    if validation_split is not None:
        keys = array_keys(len(x))
        train_idx, val_idx = split_indices(
            [keys[i] for i in idx_all], float(validation_split), seed_, where="validation_split"
        )
        parts = {"training": idx_all[train_idx], "validation": idx_all[val_idx]}
        wanted = ("training", "validation") if subset == "both" else (subset,)
    num_classes = (
        len(class_names) if class_names is not None else (int(y.max()) + 1 if y is not None else 0)
    )
    config: DataConfig = opts["_config"]
    channels = config.channels
    # A random crop is resized to image_size, or to the arrays' own size without one.
    crop_config = config
    if config.image_size is None:
        crop_config = dataclasses.replace(config, image_size=tuple(x.shape[1:3]))

    def convert(image, resize):
        if image.shape[-1] != channels:
            if channels == 3:
                image = tf.image.grayscale_to_rgb(image)
            else:
                image = tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))
                if x.dtype == np.uint8:
                    image = to_uint8(image)
        if resize and config.image_size is not None:
            if x.dtype == np.uint8:
                image = resize_image(image, config)
            else:
                image = resize_float(image, config)
        return image

    def make(name, training, o):
        idx = parts[name]
        labeled = y is not None
        columns = (x[idx], y[idx]) if labeled else x[idx]
        ds = tf.data.Dataset.from_tensor_slices(columns)
        do_shuffle = o["shuffle"] and training
        # the crop resizes its window: the image goes to it at its own size
        resize = not (training and crop_spec(o["augment"]) is not None)
        if labeled:
            ds = ds.map(
                lambda a, b: (convert(a, resize), b), num_parallel_calls=o["num_parallel_calls"]
            )
        else:
            ds = ds.map(lambda a: convert(a, resize), num_parallel_calls=o["num_parallel_calls"])
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
            config=crop_config,
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
                data_config=config,
                normalization=opts["_normalization"],
                preprocessing_layer=_serving_layer(opts, opts["_normalization"]),
            )
        )
    return tuple(out) if len(out) == 2 else out[0]


from_arrays.__doc__ = from_arrays.__doc__.replace("    {common}", _COMMON_DOC.strip("\n"))
