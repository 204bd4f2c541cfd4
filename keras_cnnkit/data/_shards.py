"""Reading packed TFRecord shards: the folder pipeline's batches, from a few large files.

The records written by :func:`keras_cnnkit.data.pack` hold each file's encoded bytes;
they are decoded and resized by the data layer's one function
(:func:`~keras_cnnkit.data.decode_and_resize`), then shuffled, batched and augmented by
the same code as :func:`~keras_cnnkit.data.from_directory`, so the same images give the
same pixels and labels on both routes.

Shards in a ``gs://`` bucket are downloaded once into a local cache through
google-cloud-storage (crc32c checked on the way, sha256 checked against the manifest),
then read from there; a second run finds them in the cache. Under multi-process
training every process reads only its own shards (file-level sharding).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import pathlib
from collections.abc import Mapping, Sequence

import tensorflow as tf

from keras_cnnkit.data._inspect import DEFAULT_MAX_PIXELS, display_path
from keras_cnnkit.data._pack import FORMAT, MANIFEST
from keras_cnnkit.data._report import SkipReport
from keras_cnnkit.data._store import Store
from keras_cnnkit.errors import DataError, IntegrityError, SpecError

#: Where shards read from a bucket are kept (``CNNKIT_SHARD_CACHE`` overrides it).
DEFAULT_CACHE = os.path.join("~", ".cache", "keras_cnnkit", "shards")

_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "filename": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "height": tf.io.FixedLenFeature([], tf.int64, default_value=0),
    "width": tf.io.FixedLenFeature([], tf.int64, default_value=0),
    "is_jpeg": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "orientation": tf.io.FixedLenFeature([], tf.int64, default_value=1),
}


def cache_root(cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The local shard cache: ``cache_dir``, ``$CNNKIT_SHARD_CACHE`` or ``~/.cache/...``."""
    root = cache_dir or os.environ.get("CNNKIT_SHARD_CACHE") or DEFAULT_CACHE
    return pathlib.Path(os.path.expanduser(os.fspath(root)))


def is_shard_source(value) -> bool:
    """Whether ``value`` names packed shards: a ``manifest.json`` or a ``*.tfrecord`` pattern."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    text = os.fspath(value)
    return text.endswith(".json") or ".tfrecord" in text


def read_manifest(source: str | os.PathLike, gcs=None) -> dict:
    """Read and check a shard manifest (local path or ``gs://`` URI).

    Raises:
        DataError: If it is missing, unreadable or not a keras_cnnkit shard manifest.
    """
    text = os.fspath(source)
    folder, name = text.rsplit("/", 1) if "/" in text else (".", text)
    store = Store(folder, gcs)
    data = store.get_json(name)
    if data is None:
        raise DataError(
            f"shard manifest {text} not found (a pack that did not finish has none: run the "
            "same pack again to complete it)"
        )
    if data.get("format") != FORMAT:
        raise DataError(f"{text} is not a keras_cnnkit shard manifest (format {FORMAT!r})")
    return data


def _shard_list(source: str, split: str, gcs) -> tuple[dict | None, Store, list[dict]]:
    """``(manifest or None, store, shard entries)`` of a manifest or a shard pattern."""
    if source.endswith(".json"):
        manifest = read_manifest(source, gcs)
        folder = source.rsplit("/", 1)[0] if "/" in source else "."
        splits = manifest["splits"]
        if split not in splits:
            raise DataError(f"{source} has no split {split!r} (it has {sorted(splits)})")
        return manifest, Store(folder, gcs), list(splits[split]["shards"])
    folder, pattern = source.rsplit("/", 1) if "/" in source else (".", source)
    store = Store(folder, gcs)
    names = [n for n in store.list() if fnmatch.fnmatchcase(n, pattern)]
    if not names:
        raise DataError(f"no shard matches {source}")
    manifest = store.get_json(MANIFEST)
    if manifest is not None and manifest.get("format") == FORMAT:
        by_name = {s["name"]: s for sp in manifest["splits"].values() for s in sp["shards"]}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise DataError(
                f"{store.uri(unknown[0])} matches {source} but is not in {store.uri(MANIFEST)}: "
                "it is left over from an unfinished pack"
            )
        return manifest, store, [by_name[n] for n in names]
    return None, store, [{"name": n} for n in names]


def _sha256(path: pathlib.Path) -> str:
    from keras_cnnkit.io._files import sha256_file

    return sha256_file(path)


def local_shards(
    store: Store, shards: list[dict], cache_dir=None, verify: bool = False
) -> list[str]:
    """Local paths of ``shards``: as they are, or downloaded once into the cache.

    A downloaded shard is checked against the manifest's sha256 before it is used; a
    cached one whose size or recorded checksum differs is downloaded again.

    Raises:
        IntegrityError: If a shard does not match the manifest's checksum.
    """
    if not store.remote:
        paths = [store.uri(s["name"]) for s in shards]
        for s, p in zip(shards, paths):
            if not os.path.isfile(p):
                raise DataError(f"shard {display_path(p)} is missing")
            if verify and s.get("sha256") and _sha256(pathlib.Path(p)) != s["sha256"]:
                raise IntegrityError(f"shard {display_path(p)} does not match its sha256")
        return paths
    key = hashlib.sha256(store.location.encode()).hexdigest()[:16]
    folder = cache_root(cache_dir) / key
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for s in shards:
        path = folder / s["name"]
        mark = folder / (s["name"] + ".sha256")
        want = s.get("sha256")
        fresh = (
            path.is_file()
            and mark.is_file()
            and (want is None or mark.read_text().strip() == want)
            and ("bytes" not in s or path.stat().st_size == s["bytes"])
        )
        if not fresh:
            store.get_file(s["name"], path)  # temporary name, renamed when complete
            got = _sha256(path)
            if want is not None and got != want:
                path.unlink(missing_ok=True)
                raise IntegrityError(
                    f"shard {store.uri(s['name'])} does not match the sha256 of its manifest"
                )
            from keras_cnnkit.io._files import write_text

            write_text(mark, got + "\n")
        out.append(os.fspath(path))
    return out


def process_shards(
    shards: Sequence, num_processes: int, process_id: int, where: str = "from_shards"
) -> list:
    """The shards process ``process_id`` of ``num_processes`` reads: every n-th one.

    Raises:
        DataError: If there are fewer shards than processes.

    Example:
        >>> process_shards(["a", "b", "c", "d", "e"], 2, 1)
        ['b', 'd']
    """
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise SpecError(f"{where}: process {process_id} of {num_processes} is not valid")
    if len(shards) < num_processes:
        raise DataError(
            f"{where}: {len(shards)} shard(s) for {num_processes} processes; every process "
            "needs at least one: pack again with a smaller shard_size"
        )
    return list(shards)[process_id::num_processes]


class _ShardFailure(list):
    """The failure the data layer's converting iterator raises when reading shards fails.

    Worked out when a read fails: the shards that no longer match their manifest sha256
    are named (:class:`IntegrityError`), else the source is.
    """

    def __init__(self, files: list[str], shards: list[dict], source: str):
        super().__init__()
        self._files, self._shards, self._source = files, shards, source

    def __bool__(self) -> bool:
        return True

    def __getitem__(self, index):
        damaged = [
            display_path(f)
            for f, s in zip(self._files, self._shards)
            if s.get("sha256") and _sha256(pathlib.Path(f)) != s["sha256"]
        ]
        if damaged:
            return IntegrityError(
                f"shard {', '.join(damaged)} of {self._source} is damaged: it no longer "
                "matches the sha256 of its manifest (pack again, or delete it from the cache)"
            )
        return DataError(f"reading the shards of {self._source} failed")


def from_shards(
    source: str | os.PathLike,
    *,
    split: str = "train",
    label_mode: str | None = "int",
    image_size: int | Sequence[int] | None = (224, 224),
    color_mode: str = "rgb",
    resize_mode: str = "stretch",
    interpolation: str = "bilinear",
    center_crop: float | None = None,
    antialias: bool = False,
    augment: Mapping | Sequence | None = None,
    batch_size: int | None = 32,
    shuffle: bool = True,
    seed: int | None = None,
    cache: str | os.PathLike | None = None,
    prefetch: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    drop_remainder: bool = False,
    shuffle_buffer: int = 1024,
    num_parallel_calls: int = tf.data.AUTOTUNE,
    num_processes: int = 1,
    process_id: int = 0,
    equal_shares: bool = False,
    cycle_length: int | None = None,
    include_filenames: bool = False,
    cache_dir: str | os.PathLike | None = None,
    verify: bool = False,
    gcs=None,
    data_config=None,
) -> tf.data.Dataset:
    """Build a pipeline from TFRecord shards written by :func:`~keras_cnnkit.data.pack`.

    ``source`` is a ``manifest.json`` (local or ``gs://``) or a shard pattern
    (``.../train-*.tfrecord``). Shards are read interleaved (``cycle_length`` at a time),
    in an order reshuffled every epoch, through a record shuffle buffer; then decoded
    and resized by :func:`~keras_cnnkit.data.decode_and_resize` and batched and
    augmented as :func:`~keras_cnnkit.data.from_directory` does. With ``shuffle=False``
    the records come in manifest order.

    With ``num_processes > 1`` this process reads only the shards
    ``process_id::num_processes`` (file-level sharding): over the processes every image
    is read once per epoch. Shards rarely split evenly between processes, while a
    multi-process training step is a collective that every process must join: with
    ``equal_shares=True`` every process reads the same, declared number of records
    per epoch, the largest share (from the manifest's counts), a process with a
    smaller share reading some of its records twice, so every image is still read at
    least once per epoch and every process runs the same number of steps. ``gs://``
    shards are downloaded once into ``cache_dir`` (default ``$CNNKIT_SHARD_CACHE`` or
    ``~/.cache/keras_cnnkit/shards``) and checked against the manifest's sha256.

    Args:
        source: A manifest or shard pattern, local or ``gs://``.
        split: The manifest's split to read (``"train"`` or ``"validation"``).
        label_mode: ``"int"``, ``"categorical"`` (one-hot) or ``None`` (images only).
        image_size: Output ``(height, width)`` (or an int for a square); ``None`` keeps
            the stored size (then ``batch_size`` needs images of one size).
        color_mode: ``"rgb"`` or ``"grayscale"``.
        resize_mode: ``"stretch"``, ``"crop"`` or ``"pad"``.
        interpolation: Resizing interpolation.
        center_crop: Central fraction kept after resizing, or ``None``.
        antialias: Antialias when downsampling.
        augment: Training augmentation, as in :func:`~keras_cnnkit.data.from_directory`.
        batch_size: Images per batch, or ``None``.
        shuffle: Shuffle shards and records, reshuffled every epoch.
        seed: Seed of shuffling and augmentation.
        cache: ``None``, ``"memory"`` or a file path prefix for ``Dataset.cache``.
        prefetch: Prefetch batches in the background.
        max_pixels: Largest ``width * height`` decoded.
        drop_remainder: Drop the last, smaller batch.
        shuffle_buffer: Records in the shuffle buffer.
        num_parallel_calls: Parallel decode calls.
        num_processes: Processes reading the shards together.
        process_id: This process's index.
        equal_shares: Every process reads the largest share's number of records per
            epoch (needs a manifest's counts); the dataset's cardinality says so.
        cycle_length: Shards read at once (default: up to 8).
        include_filenames: Add each record's source file name as a last element.
        cache_dir: Local cache of ``gs://`` shards.
        verify: Also check local shards against the manifest's sha256 first.
        gcs: :class:`keras_cnnkit.io.GCSOptions` for ``gs://`` sources.
        data_config: A model, ``(model, metadata)`` or :class:`DataConfig` whose input
            settings replace the arguments above.

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` batches (or images). It carries
        ``class_names``, ``num_examples`` (this process's images per epoch,
        when the manifest says), ``shard_files`` (the local files read), ``report``
        (the files the pack skipped) and ``data_config``.

    Raises:
        DataError: If the manifest or a shard is missing, the split unknown, there are
            fewer shards than processes, or ``equal_shares`` has no counts to go by.
        IntegrityError: If a shard does not match the manifest's checksum.
        SpecError: If an option is invalid.

    Example:
        >>> import os, tempfile
        >>> from PIL import Image
        >>> from keras_cnnkit.data import pack
        >>> root = tempfile.mkdtemp()
        >>> for name in ("cat", "dog"):
        ...     os.makedirs(os.path.join(root, name))
        ...     Image.new("RGB", (12, 10)).save(os.path.join(root, name, "a.jpg"))
        >>> result = pack(root, os.path.join(root, "shards"), progress=False)
        >>> ds = from_shards(result.manifest_uri, image_size=8, batch_size=2, seed=0)
        >>> images, labels = next(iter(ds))
        >>> tuple(images.shape), ds.class_names
        ((2, 8, 8, 3), ['cat', 'dog'])
    """
    from keras_cnnkit.data._augment import crop_spec
    from keras_cnnkit.data._config import DataConfig
    from keras_cnnkit.data._decode import (
        JPEG_RATIOS,
        _resize_target,
        decode_and_resize,
        resize_float,
    )
    from keras_cnnkit.data._pipeline import _converting, _decorate, _finish, _options, _planned

    opts = _options(
        "from_shards",
        image_size=image_size,
        color_mode=color_mode,
        resize_mode=resize_mode,
        interpolation=interpolation,
        center_crop=center_crop,
        antialias=antialias,
        class_names=None,
        label_mode=label_mode,
        augment=augment,
        normalize=None,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        cache=cache,
        prefetch=prefetch,
        validation_split=None,
        subset=None,
        on_error="raise",
        max_pixels=max_pixels,
        drop_remainder=drop_remainder,
        shuffle_buffer=shuffle_buffer,
        num_parallel_calls=num_parallel_calls,
        data_config=data_config,
    )
    text = os.fspath(source)
    manifest, store, shards = _shard_list(text, split, gcs)
    mine = process_shards(shards, int(num_processes), int(process_id))
    files = local_shards(store, mine, cache_dir, verify)
    class_names = list(manifest["class_names"]) if manifest else None
    counts = [s.get("count") for s in mine]
    num_examples = sum(counts) if all(c is not None for c in counts) else None
    share = None  # records per epoch, equal on every process
    if equal_shares and int(num_processes) > 1:
        every = [s.get("count") for s in shards]
        if any(c is None for c in every):
            raise DataError(
                f"from_shards: equal_shares needs the record count of every shard of {text}; "
                "read them through their manifest.json"
            )
        n = int(num_processes)
        share = max(sum(every[p::n]) for p in range(n))
    config: DataConfig = opts["_config"]
    channels = config.channels
    target = config.image_size
    labeled = opts["label_mode"] is not None
    late_resize = None
    resize_now = True
    info = manifest["splits"].get(split, {}) if manifest else {}
    # A random crop cuts its window from the full-size decode and resizes it itself.
    cropping = crop_spec(opts["augment"]) is not None and not include_filenames
    if cropping:
        resize_now = False
    elif (
        opts["augment"]
        and target is not None
        and config.center_crop is None
        and info.get("max_height")
        and info["max_height"] <= target[0]
        and info["max_width"] <= target[1]
    ):
        # As the folder route: augment at the source size, then upsample.
        late_resize = functools.partial(resize_float, config=config)
        resize_now = False
    seed_ = opts["seed"]
    do_shuffle = bool(opts["shuffle"])
    names = tf.data.Dataset.from_tensor_slices(files)
    if do_shuffle:
        names = names.shuffle(len(files), seed=seed_, reshuffle_each_iteration=True)
    cycle = min(len(files), cycle_length or 8)
    ds = names.interleave(
        lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20),
        cycle_length=cycle,
        block_length=1,
        **(
            {"num_parallel_calls": min(cycle, 4), "deterministic": not do_shuffle}
            if cycle > 1
            else {}
        ),
    )
    if do_shuffle:  # shuffle the encoded records, not the decoded pixels
        ds = ds.shuffle(max(1, shuffle_buffer), seed=seed_, reshuffle_each_iteration=True)
    if share is not None:
        # A smaller share goes round again (reshuffled) up to the largest share.
        if share > num_examples:
            ds = ds.repeat()
        ds = ds.take(share)
        num_examples = share

    kinds = info.get("kinds") if manifest else None
    planned = None
    if kinds:
        # The pack recorded each file's decoding plan (format, EXIF turn) from its check,
        # as the folder route does before its first epoch: decode as planned.
        n_jpeg, n_other = kinds["jpeg"], kinds["other"]
        formats = "jpeg" if not n_other else "other" if not n_jpeg else "any"
        planned = _planned(config, resize_now, formats, kinds["turned"] > 0)
    scale_target = _resize_target(config)

    def plan(ex):
        ratio = tf.constant(0, tf.int32)
        if scale_target is not None and not cropping:  # the DCT scale that covers the output
            h, w = ex["height"], ex["width"]
            for i, r in enumerate(JPEG_RATIOS[1:], start=1):
                fits = tf.logical_and(h >= r * scale_target[0], w >= r * scale_target[1])
                ratio = tf.where(fits, tf.constant(i, tf.int32), ratio)
        is_jpeg = tf.equal(ex["is_jpeg"], 1)
        ratio = tf.where(is_jpeg, ratio, tf.constant(0, tf.int32))
        return is_jpeg, ratio, tf.cast(ex["orientation"], tf.int32)

    def decode(ex):
        if planned is not None:
            image = planned(ex["image"], *plan(ex))
        elif resize_now:
            image = decode_and_resize(ex["image"], config, opts["max_pixels"])
        else:
            from keras_cnnkit.data._decode import decode_image

            image = decode_image(ex["image"], config, opts["max_pixels"])
        image.set_shape([None, None, channels])
        if resize_now and target is not None:
            image = tf.ensure_shape(image, [target[0], target[1], channels])
        label = tf.cast(ex["label"], tf.int32)
        if include_filenames:
            return (image, label, ex["filename"]) if labeled else (image, ex["filename"])
        return (image, label) if labeled else image

    # Records parsed 256 at a time (one vectorized op), then decoded one by one.
    ds = ds.batch(256).map(lambda r: tf.io.parse_example(r, _FEATURES)).unbatch()
    ds = ds.map(decode, num_parallel_calls=opts["num_parallel_calls"])
    if share is not None:  # declared, so the batches are counted before the first epoch
        ds = ds.apply(tf.data.experimental.assert_cardinality(share))
    if include_filenames:
        # Batch as they are: the extra element stays beside the images.
        if opts["batch_size"] is not None:
            ds = ds.batch(opts["batch_size"], drop_remainder=opts["drop_remainder"])
    else:
        ds = _finish(
            ds,
            num_examples or 1,
            labeled=labeled,
            label_mode=opts["label_mode"],
            num_classes=len(class_names) if class_names else 0,
            batch_size=opts["batch_size"],
            shuffle=do_shuffle,
            shuffled_before=True,
            seed=seed_,
            cache=opts["cache"],
            augment=opts["augment"],
            normalization=None,
            drop_remainder=opts["drop_remainder"],
            prefetch=opts["prefetch"],
            shuffle_buffer=opts["shuffle_buffer"],
            late_resize=late_resize,
            config=config,
        )
    if share is not None and int(ds.cardinality()) < 0:  # declared again after batching
        size = opts["batch_size"]
        steps = share if size is None else share // size
        if size is not None and not opts["drop_remainder"] and share % size:
            steps += 1
        ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    # A read that fails during Python iteration names the damaged shard.
    ds = _converting(ds, _ShardFailure(files, mine, text))
    report = SkipReport()
    for item in (manifest or {}).get("skipped", []):
        report.add(item["path"], item["reason"])
    return _decorate(
        ds,
        class_names=class_names,
        num_examples=num_examples,
        shard_files=files,
        report=report,
        manifest=manifest,
        data_config=DataConfig(
            **{**config.to_dict(), "class_names": tuple(class_names) if class_names else None}
        ),
    )


def describe(manifest: Mapping) -> str:
    """One line per split of a manifest: images, shards and bytes."""
    lines = []
    for name, sp in manifest["splits"].items():
        size = sum(s.get("bytes", 0) for s in sp["shards"])
        lines.append(
            f"{name}: {sp['count']} images in {len(sp['shards'])} shard(s), {size / 1e6:.1f} MB"
        )
    return "\n".join(lines)
