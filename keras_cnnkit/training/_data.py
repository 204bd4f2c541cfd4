"""The data of a training run: arrays from a ``.npz`` or an image folder, split and batched."""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from keras_cnnkit.errors import DataError

logger = logging.getLogger("keras_cnnkit")


@dataclasses.dataclass
class TrainData:
    """The training and validation data of a run, before batching.

    Arrays (from a ``.npz``, or an image folder decoded once into memory) are
    batched by the recipe; otherwise an image folder streams through
    :func:`keras_cnnkit.data.from_directory`, already batched.

    Attributes:
        class_names: Names of the classes, in label order.
        input_shape: ``(height, width, channels)`` of the model input.
        num_train: Number of training images.
        has_validation: Whether there is validation data.
        arrays: ``(x, y, x_val, y_val)`` for array data, else ``None``.
        streams: ``(train, validation)`` datasets for streamed data, else ``None``.
        shuffle: Shuffle the training data every epoch.
        input_preprocessing: For folder data, how files became the model input
            (``DataConfig.input_preprocessing()``), to record in the model's metadata.
        process_sharded: The streams already hold only this process's share of the
            data (each process of a job reads its own files), so training does not
            slice the global batches between processes again.
    """

    class_names: list[str]
    input_shape: tuple[int, ...]
    num_train: int
    has_validation: bool
    arrays: tuple | None = None
    streams: tuple | None = None
    shuffle: bool = True
    input_preprocessing: dict | None = None
    process_sharded: bool = False

    def sources(self) -> tuple:
        """``(train, validation)`` as :meth:`TrainingRecipe.fit` takes them.

        Arrays give ``(x, y)`` tuples, folders their streaming datasets; the validation
        source is ``None`` when there is no validation data.
        """
        if self.arrays is not None:
            x, y, x_val, y_val = self.arrays
            return (x, y), ((x_val, y_val) if x_val is not None else None)
        return self.streams


def load_data(
    config: Mapping[str, Any], *, batch_size: int = 32, seed: int = 0, shuffle: bool = True
) -> TrainData:
    """Load the ``[data]`` section: an image folder or a ``.npz``, and the validation data.

    A ``.npz`` holds ``x`` (images) and ``y`` (integer labels), and optionally
    ``class_names``. An image folder holds one subfolder per class and is read by
    the data layer's decoder (files checked up front, decoded in parallel, resized
    to ``image_size`` or to the size of its first image): with ``cache = "auto"``
    (the default) decoded once into memory when the decoded images fit in
    :func:`memory_limit`, with ``"memory"`` always, else (``"none"``, or too big)
    streamed from the files every epoch by :func:`keras_cnnkit.data.from_directory`.

    Args:
        config: The ``[data]`` section.
        batch_size: Global batch size of folder data.
        seed: Seed of shuffling and of the validation split.
        shuffle: Shuffle the training data every epoch.

    Returns:
        The data.

    Raises:
        DataError: If a path is missing or the data is malformed (names the path).
    """
    train = config["train"]
    from keras_cnnkit.data._shards import is_shard_source

    if is_shard_source(train):
        return _load_shards(config, batch_size, seed, shuffle)
    if config.get("service"):
        from keras_cnnkit.errors import ConfigError

        raise ConfigError(
            f"data.service sends packed shards through a tf.data service; data.train = "
            f"{train!r} is not a manifest or shard pattern: pack it first (cnnkit pack)"
        )
    for key in ("train", "validation"):
        if str(config.get(key, "")).startswith("gs://"):
            if str(config[key]).endswith(".npz"):
                raise DataError(
                    f"data.{key} = {config[key]!r}: a .npz is read from a local path; copy it "
                    "first (cnnkit download URI DEST)"
                )
            from keras_cnnkit.data._store import mirror_folder

            # A folder tree in a bucket (small sets): one checked local copy in the cache.
            local = mirror_folder(str(config[key]), config.get("shard_cache") or None)
            config = {**config, key: str(local)}
    train = config["train"]
    if pathlib.Path(train).suffix != ".npz":
        return _load_folders(config, batch_size, seed, shuffle)
    x, y, names = _load_npz(train, "data.train")
    if config.get("class_names"):
        names = [str(n) for n in config["class_names"]]
    x_val = y_val = None
    if config.get("validation"):
        x_val, y_val, val_names = _load_npz(config["validation"], "data.validation")
        if val_names and names and list(val_names) != list(names):
            raise DataError(
                f"data.validation classes {list(val_names)} differ from data.train classes "
                f"{list(names)}"
            )
        if x_val.shape[1:] != x.shape[1:]:
            raise DataError(
                f"data.validation images are {x_val.shape[1:]}, training images {x.shape[1:]}"
            )
    elif config.get("validation_split"):
        from keras_cnnkit.data._split import array_keys, split_indices

        # The pipelines' split, keyed "x[i]" as from_arrays keys it.
        train_idx, val_idx = split_indices(
            array_keys(len(x)),
            float(config["validation_split"]),
            seed,
            where=f"data.validation_split = {config['validation_split']}",
        )
        x_val, y_val = x[val_idx], y[val_idx]
        x, y = x[train_idx], y[train_idx]
    num = int(max(y.max(), y_val.max() if y_val is not None else 0)) + 1
    if not names:
        names = [str(i) for i in range(num)]
    if num > len(names):
        raise DataError(f"labels go up to {num - 1} but there are only {len(names)} class names")
    return TrainData(
        class_names=list(names),
        input_shape=tuple(int(s) for s in x.shape[1:]),
        num_train=len(x),
        has_validation=x_val is not None,
        arrays=(x, y, x_val, y_val),
        shuffle=shuffle,
    )


def _load_npz(path: str, key: str):
    from keras_cnnkit.data._npz import read_npz

    x, y, names = read_npz(path, key)
    return x, y.astype("int32"), names


def _load_folders(config: Mapping, batch_size: int, seed: int, shuffle: bool) -> TrainData:
    from keras_cnnkit.data import from_directory

    root = pathlib.Path(config["train"])
    if not root.is_dir():
        raise DataError(f"data.train: data folder not found: {root}")
    val_root = None
    if config.get("validation"):
        val_root = pathlib.Path(config["validation"])
        if not val_root.is_dir():
            raise DataError(f"data.validation: data folder not found: {val_root}")
    size = tuple(config.get("image_size") or ()) or _first_image_size(root)
    channels = 1 if config.get("color_mode") == "grayscale" else 3
    names = [str(n) for n in config.get("class_names") or []] or None
    if _in_memory(config, root, val_root, names, size, channels):
        return _folders_in_memory(config, root, val_root, names, size, seed, shuffle)
    common = {
        "image_size": size,
        "color_mode": config.get("color_mode", "rgb"),
        "batch_size": batch_size,
        "seed": seed,
    }
    val_ds = None
    if val_root is not None:
        train_ds = from_directory(root, class_names=names, shuffle=shuffle, **common)
        val_ds = from_directory(val_root, class_names=train_ds.class_names, shuffle=False, **common)
    elif config.get("validation_split"):
        train_ds, val_ds = from_directory(
            root,
            class_names=names,
            shuffle=shuffle,
            validation_split=config["validation_split"],
            subset="both",
            **common,
        )
    else:
        train_ds = from_directory(root, class_names=names, shuffle=shuffle, **common)
    num_train = len(train_ds.file_paths)
    return TrainData(
        class_names=list(train_ds.class_names),
        input_shape=(int(size[0]), int(size[1]), channels),
        num_train=num_train,
        has_validation=val_ds is not None,
        streams=(train_ds, val_ds),
        shuffle=shuffle,
        input_preprocessing=train_ds.data_config.input_preprocessing(),
    )


def memory_limit(cache_limit_gib: float = 0.0) -> int:
    """Bytes of decoded images ``data.cache = "auto"`` keeps in memory.

    Args:
        cache_limit_gib: ``data.cache_limit_gib``: GiB, or ``0`` for a quarter of the
            machine's physical memory (4 GiB where the system does not say).

    Returns:
        The limit in bytes.
    """
    if cache_limit_gib > 0:
        return int(cache_limit_gib * 2**30)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        total = 16 * 2**30
    return int(total) // 4


def _in_memory(config: Mapping, root, val_root, names, size, channels: int) -> bool:
    """Whether the folders are decoded once into arrays (``data.cache``)."""
    from keras_cnnkit.data._listing import class_folders, list_images

    cache = config.get("cache", "auto")
    if cache == "none":
        return False
    if cache == "memory":
        return True
    classes = class_folders(root, names, "data.train")
    count = sum(len(list_images(root / c)) for c in classes)
    if val_root is not None:
        count += sum(len(list_images(val_root / c)) for c in classes if (val_root / c).is_dir())
    needed = count * int(size[0]) * int(size[1]) * channels
    limit = memory_limit(float(config.get("cache_limit_gib", 0.0)))
    if needed > limit:
        logger.info(
            "data.train: %d images are %.1f MiB decoded, over the memory cache limit of "
            "%.1f MiB (data.cache_limit_gib); streaming them from the files every epoch",
            count,
            needed / 2**20,
            limit / 2**20,
        )
        return False
    return True


def _folders_in_memory(
    config: Mapping, root, val_root, names, size, seed: int, shuffle: bool
) -> TrainData:
    """The folders decoded once into ``uint8`` arrays by the pipelines' decoder.

    :func:`keras_cnnkit.data.load_image_folder` gives the pixels
    :func:`~keras_cnnkit.data.from_directory` streams, and its split is the
    pipelines' keyed split, so both routes train on the same images. With
    ``shuffle``, the training arrays are put in one seeded random order (files come
    sorted by class, and a recipe may fit a layer to the first images); the recipe
    still shuffles every epoch.
    """
    import time

    import numpy as np

    from keras_cnnkit.data import DataConfig, load_image_folder

    start = time.perf_counter()
    common = {"image_size": size, "color_mode": config.get("color_mode", "rgb")}
    train = load_image_folder(root, classes=names, **common)
    val = None
    if val_root is not None:
        val = load_image_folder(val_root, classes=train.class_names, **common)
    elif config.get("validation_split"):
        train, val = train.split(float(config["validation_split"]), seed)
    x, y = train.x, train.y
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(x))
        x, y = x[order], y[order]
    logger.info(
        "data.train: %d images decoded into memory (%.1f MiB) in %.1f s",
        len(x) + (len(val.x) if val is not None else 0),
        (x.nbytes + (val.x.nbytes if val is not None else 0)) / 2**20,
        time.perf_counter() - start,
    )
    return TrainData(
        class_names=list(train.class_names),
        input_shape=tuple(int(s) for s in x.shape[1:]),
        num_train=len(x),
        has_validation=val is not None,
        arrays=(x, y, *((val.x, val.y) if val is not None else (None, None))),
        shuffle=shuffle,
        input_preprocessing=DataConfig(**common).input_preprocessing(),
    )


def _first_image_size(root: pathlib.Path) -> tuple[int, int]:
    """The size of the first readable image under ``root``, as the pipelines decode it."""
    from keras_cnnkit.data import list_images, read_image
    from keras_cnnkit.errors import ImageDecodeError

    for path in list_images(root):
        try:
            return tuple(int(s) for s in read_image(path).shape[:2])
        except ImageDecodeError:
            continue
    raise DataError(f"data.train: no readable images under {root}")


def _load_shards(config: Mapping, batch_size: int, seed: int, shuffle: bool) -> TrainData:
    """Packed shards (a manifest or a shard pattern, local or ``gs://``), optionally served.

    The validation data is ``data.validation`` (another manifest or pattern) or the
    manifest's own ``validation`` split. With ``data.service`` the training pipeline runs
    on the tf.data service workers of that dispatcher.

    In a job of several processes (JAX), each process reads only its own training
    shards, in local batches of ``batch_size / processes`` rows, and the same number
    of them per epoch (``from_shards(equal_shares=True)``), so every training step is
    joined by every process; ``num_train`` is the job's images per epoch. The
    validation set is read whole by every process and each takes its slice of every
    global batch (:func:`~keras_cnnkit.training.distribute.process_shard`), so the
    validation scores are those of one process; at most ``processes - 1`` validation
    images that do not split evenly are left out.
    """
    from keras_cnnkit.data import from_shards, through_service
    from keras_cnnkit.data._shards import read_manifest

    train = str(config["train"])
    cache = config.get("shard_cache") or None
    manifest = read_manifest(train) if train.endswith(".json") else None
    size = tuple(config.get("image_size") or ())
    if not size:
        if manifest is None:
            raise DataError(f"data.train = {train!r}: a shard pattern needs data.image_size")
        split = manifest["splits"]["train"]
        size = (int(split["max_height"]), int(split["max_width"]))
    channels = 1 if config.get("color_mode") == "grayscale" else 3
    num, pid = _process_layout()
    if batch_size % num:
        from keras_cnnkit.errors import ConfigError

        raise ConfigError(
            f"training.batch_size = {batch_size} does not split between {num} processes: "
            f"make it a multiple of {num}"
        )
    if num > 1 and config.get("service"):
        from keras_cnnkit.errors import ConfigError

        raise ConfigError(
            f"data.service with {num} training processes: each process reads its own shards "
            "here; run the job without data.service, or with one process"
        )
    common = {
        "image_size": size,
        "color_mode": config.get("color_mode", "rgb"),
        "seed": seed,
        "cache_dir": cache,
    }
    train_ds = from_shards(
        train,
        shuffle=shuffle,
        batch_size=batch_size // num,
        num_processes=num,
        process_id=pid,
        equal_shares=num > 1,
        **common,
    )
    val_source = None
    if config.get("validation"):
        val_source = {"source": str(config["validation"])}
    elif manifest is not None and "validation" in manifest["splits"]:
        val_source = {"source": train, "split": "validation"}
    val_ds = None
    if val_source is not None and num == 1:
        val_ds = from_shards(**val_source, shuffle=False, batch_size=batch_size, **common)
    elif val_source is not None:
        from keras_cnnkit.training.distribute import process_shard

        val_ds = from_shards(**val_source, shuffle=False, batch_size=None, **common)
        if val_ds.num_examples is None:
            raise DataError(
                f"{val_source['source']}: several processes need the validation count of a "
                "manifest; name its manifest.json"
            )
        # Every global batch (the last one too) splits evenly between the processes.
        usable = val_ds.num_examples - val_ds.num_examples % num
        val_ds = process_shard(val_ds.take(usable).batch(batch_size), None, num, pid)
    if val_source is None and config.get("validation_split"):
        raise DataError(
            f"data.validation_split: the shards of {train} hold no validation split; pack "
            "with --validation-split or set data.validation"
        )
    if config.get("class_names") and list(config["class_names"]) != train_ds.class_names:
        raise DataError(
            f"data.class_names {list(config['class_names'])} differ from the classes of "
            f"{train}: {train_ds.class_names}"
        )
    names = train_ds.class_names or [str(n) for n in config.get("class_names") or []]
    if not names:
        raise DataError(f"data.train = {train!r}: no class names (set data.class_names)")
    num_train = (train_ds.num_examples or 0) * num  # the job's images per epoch
    input_preprocessing = train_ds.data_config.input_preprocessing()
    if config.get("service"):
        train_ds = through_service(
            train_ds,
            str(config["service"]),
            mode=config.get("service_mode", "distributed_epoch"),
            timeout=float(config.get("service_timeout", 10.0)),
        )
    return TrainData(
        class_names=list(names),
        input_shape=(int(size[0]), int(size[1]), channels),
        num_train=int(num_train),
        has_validation=val_ds is not None,
        streams=(train_ds, val_ds),
        shuffle=shuffle,
        input_preprocessing=input_preprocessing,
        process_sharded=num > 1,
    )


def _process_layout() -> tuple[int, int]:
    """``(processes, this process's index)`` of the job this process joined (JAX), else one."""
    import keras

    if keras.backend.backend() != "jax" or keras.distribution.distribution() is None:
        return 1, 0
    import jax

    return jax.process_count(), jax.process_index()
