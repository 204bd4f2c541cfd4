"""Packing images into TFRecord shards with a manifest, resumably, locally or in a bucket.

Each record is a ``tf.train.Example`` holding the file's encoded bytes as they are
(``image``), its integer ``label``, its source name (``filename``: the path relative to
the folder, as the split keys it) and the decoded ``height`` and ``width``. Files are
checked by the data layer's check (header, then one decode by the one decoder) before
they are written; bad files are skipped into a :class:`~keras_cnnkit.data.SkipReport`
(``on_error="skip"``) or raise (``"raise"``).

Shards are written to a local temporary file and moved into place (renamed, or uploaded
as one object) only when complete; a state file (``.pack-state.json``) records after each
shard how far every split got. A killed pack run again with the same arguments continues
from there: no image is written twice and none is lost. ``manifest.json`` is written
last: its presence means the pack is complete, and it lists only complete shards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import re
import tempfile
import time
import uuid
from collections.abc import Sequence

import numpy as np

from keras_cnnkit.data._inspect import DEFAULT_MAX_PIXELS, display_path
from keras_cnnkit.data._report import SkipReport
from keras_cnnkit.errors import DataError, SpecError, StorageError

MANIFEST = "manifest.json"
STATE = ".pack-state.json"
FORMAT = "keras_cnnkit.shards"
VERSION = 1
REENCODE = (None, "png", "jpeg")
_CHUNK = 2048  # files checked (one traced check pipeline) and written per step
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}


@dataclasses.dataclass
class PackResult:
    """What :func:`pack` wrote.

    Attributes:
        manifest: The manifest (as written to ``manifest.json``).
        manifest_uri: Where the manifest is (local path or ``gs://`` URI).
        report: The files skipped, with the reason for each.
        num_images: Images written, over all splits.
        bytes: Bytes of shards written, over all splits.
        seconds: Wall time of this call (a resumed pack counts only its own part).
        resumed: Whether this call continued an interrupted pack.
    """

    manifest: dict
    manifest_uri: str
    report: SkipReport
    num_images: int
    bytes: int
    seconds: float
    resumed: bool

    @property
    def images_per_s(self) -> float:
        """Images written per second."""
        return self.num_images / max(self.seconds, 1e-9)


def parse_size(value: int | str) -> int:
    """Bytes of ``value``: an int, or text such as ``"128MB"``, ``"64MiB"`` or ``"500k"``.

    Raises:
        SpecError: If ``value`` is not a positive size.

    Example:
        >>> parse_size("128MB"), parse_size("1KiB"), parse_size(4096)
        (128000000, 1024, 4096)
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        size = int(value)
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise SpecError(f"shard_size must be a size such as '128MB', got {value!r}")
        unit = (match.group(2) or "").lower().rstrip("b")
        size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise SpecError(f"shard_size must be positive, got {value!r}")
    return size


@dataclasses.dataclass
class _Item:
    key: str  # split key and stored file name
    path: str | None  # source file, or None for an array item
    label: int
    index: int = -1  # array row


def _items_from_folder(root: str, class_names, follow_links: bool, report: SkipReport):
    from keras_cnnkit.data._listing import class_folders, list_images

    names = class_folders(root, class_names, "pack")
    items = []
    for label, name in enumerate(names):
        folder = os.path.join(root, name)
        found = list_images(folder, follow_links=follow_links)
        if not found:
            report.add(display_path(folder), "class folder contains no images")
        for path in found:
            key = os.path.relpath(path, root).replace(os.sep, "/")
            items.append(_Item(key, path, label))
    return items, names


def _items_from_files(paths, labels, class_names):
    paths = [os.fsdecode(p) if isinstance(p, bytes) else os.fspath(p) for p in paths]
    if not paths:
        raise DataError("pack: the file list is empty")
    if labels is None:
        raise DataError("pack: a file list needs labels (one integer per file)")
    labels = list(labels)
    if len(labels) != len(paths):
        raise DataError(f"pack: {len(paths)} files but {len(labels)} labels; they must match")
    try:
        labels = [int(v) for v in labels]
    except (TypeError, ValueError):
        raise DataError(f"pack: labels must be integers, got {labels[:5]!r}...") from None
    if min(labels) < 0:
        raise DataError(f"pack: labels must be >= 0, got {min(labels)}")
    names = [str(n) for n in class_names] if class_names else None
    if names is None:
        names = [str(i) for i in range(max(labels) + 1)]
    elif max(labels) >= len(names):
        raise DataError(f"pack: label {max(labels)} is out of range for {len(names)} class_names")
    return [_Item(p, p, y) for p, y in zip(paths, labels)], names


def _load_npz(path: str, class_names):
    from keras_cnnkit.data._npz import read_npz

    x, y, stored = read_npz(path, "pack")
    if x.shape[-1] not in (1, 3):
        raise DataError(
            f"pack: {display_path(path)} must hold x (n, height, width, 1 or 3) and y (n,), "
            f"got {x.shape} and {y.shape}"
        )
    if x.dtype != np.uint8:
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255:
            raise DataError(f"pack: x of {display_path(path)} must hold pixels within 0..255")
        x = np.round(x).astype(np.uint8)
    names = class_names or stored or None
    if names is None:
        names = [str(i) for i in range(int(y.max()) + 1)]
    from keras_cnnkit.data._split import array_keys

    keys = array_keys(len(x))
    return x, [_Item(k, None, int(v), i) for i, (k, v) in enumerate(zip(keys, y))], list(names)


def _example(
    data: bytes, label: int, key: str, height: int, width: int, is_jpeg: int, orientation: int
) -> bytes:
    import tensorflow as tf

    f = tf.train.Feature
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "image": f(bytes_list=tf.train.BytesList(value=[data])),
                "label": f(int64_list=tf.train.Int64List(value=[label])),
                "filename": f(bytes_list=tf.train.BytesList(value=[key.encode("utf-8")])),
                "height": f(int64_list=tf.train.Int64List(value=[height])),
                "width": f(int64_list=tf.train.Int64List(value=[width])),
                "is_jpeg": f(int64_list=tf.train.Int64List(value=[is_jpeg])),
                "orientation": f(int64_list=tf.train.Int64List(value=[orientation])),
            }
        )
    ).SerializeToString()


def _encode(image: np.ndarray, fmt: str) -> bytes:
    import tensorflow as tf

    if fmt == "jpeg":
        return tf.io.encode_jpeg(image, quality=95).numpy()
    return tf.io.encode_png(image).numpy()


def _fingerprint(source_desc: str, items: list[_Item], options: dict) -> str:
    digest = hashlib.sha256(source_desc.encode("utf-8", "surrogateescape"))
    for item in items:
        digest.update(f"{item.key}\0{item.label}\n".encode("utf-8", "surrogateescape"))
    digest.update(repr(sorted(options.items())).encode())
    return digest.hexdigest()


def _scratch(store) -> pathlib.Path:
    """A folder for the shard being written, inside a local destination.

    On the destination's file system finishing a shard is a rename; for ``gs://`` it is
    a temporary folder. Folders that killed runs left behind are removed.
    """
    if store.remote:
        return pathlib.Path(tempfile.mkdtemp(prefix="cnnkit-pack-"))
    from keras_cnnkit.io._files import _alive, remove

    root = pathlib.Path(store.location)
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob(".pack-tmp-*"):
        pid = old.name.split("-")[2]
        if not (pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid))):
            remove(old)
    path = root / f".pack-tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


class _SplitWriter:
    """Writes one split's shards; each finished shard is moved into place, then recorded."""

    def __init__(self, split: str, state: dict, store, scratch: pathlib.Path, target: int):
        self.split, self.state, self.store, self.target = split, state, store, target
        self.sp = state["splits"][split]
        self.path = scratch / f"{split}.tfrecord"
        self.writer = None
        self.count = self.size = self.images = self.bytes = 0
        self.skips: list[dict] = []
        self.max_h, self.max_w = self.sp["max_height"], self.sp["max_width"]

    @property
    def full(self) -> bool:
        return self.size >= self.target

    def write(self, record: bytes, h: int, w: int, is_jpeg: bool, turned: bool) -> None:
        import tensorflow as tf

        if self.writer is None:
            self.writer = tf.io.TFRecordWriter(str(self.path))
        self.writer.write(record)
        self.count += 1
        self.size += len(record) + 16  # TFRecord framing: length and two CRCs
        self.max_h, self.max_w = max(self.max_h, int(h)), max(self.max_w, int(w))
        kinds = self.sp.setdefault("kinds", {"jpeg": 0, "other": 0, "turned": 0})
        kinds["jpeg" if is_jpeg else "other"] += 1
        kinds["turned"] += int(turned)

    def close(self, next_pos: int) -> None:
        """Finish the open shard (if any) and record progress up to ``next_pos``."""
        sp = self.sp
        if self.writer is not None:
            from keras_cnnkit.io._files import sha256_file

            self.writer.close()
            self.writer = None
            name = f"{self.split}-{len(sp['shards']):05d}.tfrecord"
            size = self.path.stat().st_size
            digest = sha256_file(self.path)
            self.store.put_file(self.path, name)
            sp["shards"].append(
                {"name": name, "count": self.count, "bytes": size, "sha256": digest}
            )
            self.images += self.count
            self.bytes += size
        elif not self.skips and sp["next"] == next_pos:
            return
        sp["skipped"] += self.skips
        sp["next"] = next_pos
        sp["max_height"], sp["max_width"] = self.max_h, self.max_w
        self.store.put_json(STATE, self.state)
        self.count = self.size = 0
        self.skips = []


def pack(
    source,
    dest: str | os.PathLike,
    *,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    shard_size: int | str = "128MB",
    min_shards: int = 1,
    validation_split: float | int | None = None,
    seed: int = 0,
    on_error: str = "skip",
    reencode: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    follow_links: bool = False,
    overwrite: bool = False,
    progress=True,
    gcs=None,
) -> PackResult:
    """Pack images into TFRecord shards of about ``shard_size`` bytes, with a manifest.

    ``source`` is a folder of class folders (``root/<class>/<image>``), a list of image
    files (with ``labels``), or a ``.npz`` holding ``x`` and ``y`` (and optionally
    ``class_names``; its images are stored as PNG). Files are stored with their encoded
    bytes unchanged unless ``reencode`` says otherwise, in a seeded shuffled order so
    that every shard holds a mix of classes. With ``validation_split`` the images are
    divided by the data layer's one split (:func:`~keras_cnnkit.data.split_indices`,
    keyed by the path relative to the folder, the same partition as
    ``from_directory(validation_split=..., seed=...)``) into ``train-*`` and
    ``validation-*`` shards.

    ``dest`` (a local folder or ``gs://bucket/prefix``) receives the shards
    (``train-00000.tfrecord``...) and ``manifest.json``: class names, the split, and per
    split the shards with their image count, size and sha256, the largest image size,
    and the skipped files. A pack killed at any moment continues when called again with
    the same arguments; ``manifest.json`` appears only when every shard is in place.

    Args:
        source: A folder, a list of image files, or a ``.npz`` file.
        dest: Local folder or ``gs://bucket/prefix``.
        labels: One integer label per file of a file list.
        class_names: Class names: for a folder, the class folders to use in label order;
            for a file list or ``.npz``, the names the labels index.
        shard_size: Target bytes per shard (``"128MB"``, ``"64MiB"`` or an int); a
            shard closes at the first image that reaches it.
        min_shards: Write at least about this many training shards (smaller shards
            when the images would fill fewer): at least the number of processes that
            will read them, each of which reads only its own shards.
        validation_split: Fraction (or count) of images held out as the validation split.
        seed: Seed of the split and of the order of the images in the shards.
        on_error: ``"skip"`` (bad files are left out and listed in the report and the
            manifest) or ``"raise"`` (the first bad file raises).
        reencode: ``None`` (store bytes as they are), ``"png"`` or ``"jpeg"`` (decode with
            the data layer's decoder and re-encode).
        max_pixels: Largest ``width * height`` accepted.
        follow_links: Follow symbolic links to folders.
        overwrite: Replace a finished pack at ``dest``.
        progress: ``True`` for a progress bar on stderr, ``False`` for none, or a callable
            ``(done_bytes, total_bytes)``.
        gcs: :class:`keras_cnnkit.io.GCSOptions` for a ``gs://`` destination.

    Returns:
        A :class:`PackResult`.

    Raises:
        DataError: If the source is missing or empty, holds no readable image, or
            ``dest`` holds a pack of other data.
        ImageDecodeError: With ``on_error="raise"``, for the first bad file (named).
        SpecError: If an option is invalid.
        StorageError: If ``dest`` holds a finished pack and ``overwrite`` is false, or a
            transfer fails.

    Example:
        >>> import os, tempfile
        >>> from PIL import Image
        >>> root = tempfile.mkdtemp()
        >>> for name in ("cat", "dog"):
        ...     os.makedirs(os.path.join(root, name))
        ...     Image.new("RGB", (12, 10)).save(os.path.join(root, name, "a.jpg"))
        >>> result = pack(root, os.path.join(root, "shards"), progress=False)
        >>> result.manifest["class_names"], result.num_images
        (['cat', 'dog'], 2)
    """
    from keras_cnnkit.data._config import DataConfig
    from keras_cnnkit.data._pipeline import _check_files
    from keras_cnnkit.data._split import split_indices
    from keras_cnnkit.data._store import Store, is_remote
    from keras_cnnkit.io._progress import make_callback

    start = time.monotonic()
    written_images = written_bytes = 0
    if on_error not in ("raise", "skip"):
        raise SpecError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if reencode not in REENCODE:
        raise SpecError(f"reencode must be one of {REENCODE}, got {reencode!r}")
    target = parse_size(shard_size)
    if int(min_shards) < 1:
        raise SpecError(f"min_shards must be a positive int, got {min_shards!r}")
    report = SkipReport()
    arrays = None
    if isinstance(source, (str, os.PathLike)) and not is_remote(source):
        src = os.fspath(source)
        if os.path.isdir(src):
            if labels is not None:
                raise SpecError(
                    "pack: labels are for a file list; a folder's labels are its class folders"
                )
            items, names = _items_from_folder(src, class_names, follow_links, report)
            desc = "folder:" + os.path.abspath(src)
        elif src.endswith(".npz") and os.path.isfile(src):
            arrays, items, names = _load_npz(src, class_names)
            desc = "npz:" + os.path.abspath(src)
        else:
            raise DataError(
                f"pack: {display_path(src)} is not a folder of class folders or a .npz file"
            )
    elif isinstance(source, str):
        raise DataError(
            f"pack: the source {source!r} must be local (copy it first: cnnkit download URI DEST)"
        )
    else:
        items, names = _items_from_files(source, labels, class_names)
        desc = "files"
    if not items:
        raise DataError(f"pack: no images found in {display_path(str(source))}")
    store = Store(dest, gcs)
    options = {
        "validation_split": validation_split,
        "seed": int(seed),
        "shard_size": target,
        "min_shards": int(min_shards),
        "reencode": reencode,
        "max_pixels": max_pixels,
        "on_error": on_error,
    }
    fingerprint = _fingerprint(desc, items, options)
    existing = store.get_json(MANIFEST)
    if existing is not None:
        if not overwrite:
            raise StorageError(
                f"{store.uri(MANIFEST)} exists: {store.location} holds a finished pack; "
                "pass overwrite=True (cnnkit pack --overwrite) to replace it"
            )
        store.delete(MANIFEST)
        store.delete(STATE)
    state = store.get_json(STATE)
    resumed = state is not None
    if state is not None and state.get("fingerprint") != fingerprint:
        if not overwrite:
            raise DataError(
                f"{store.uri(STATE)} belongs to an unfinished pack of other data or options; "
                "pack the same source with the same options to continue it, or pass "
                "overwrite=True to start again"
            )
        state, resumed = None, False
    # The order of the images in the shards: seeded, stable, classes mixed.
    order = np.random.default_rng(seed).permutation(len(items))
    parts = {"train": order}
    if validation_split is not None:
        train_idx, val_idx = split_indices(
            [it.key for it in items], validation_split, seed, where="pack: validation_split"
        )
        in_val = np.zeros(len(items), bool)
        in_val[val_idx] = True
        parts = {"train": order[~in_val[order]], "validation": order[in_val[order]]}
    if state is None:
        state = {
            "fingerprint": fingerprint,
            "splits": {
                name: {"next": 0, "shards": [], "skipped": [], "max_height": 0, "max_width": 0}
                for name in parts
            },
        }
    for split in state["splits"].values():
        for entry in split["skipped"]:
            report.add(entry["path"], entry["reason"])
    # Shards a killed run wrote after its last state update are replaced, never listed.
    known = {s["name"] for sp in state["splits"].values() for s in sp["shards"]}
    for name in store.list():
        if name.endswith(".tfrecord") and name not in known:
            store.delete(name)

    def size_of(item: _Item) -> int:
        if item.path is None:
            return int(arrays[item.index].nbytes)
        try:
            return os.path.getsize(item.path)
        except OSError:
            return 0

    total = sum(size_of(items[i]) for idx in parts.values() for i in idx)
    done_bytes = sum(
        size_of(items[i])
        for name, idx in parts.items()
        for i in idx[: state["splits"][name]["next"]]
    )
    callback = make_callback(progress, f"pack {store.location}")
    check_config = DataConfig(image_size=None)
    scratch = _scratch(store)
    try:
        for split_name, idx in parts.items():
            split_bytes = sum(size_of(items[i]) for i in idx)
            # Shards of at most 1/min_shards of the split (by source bytes).
            split_target = target
            if int(min_shards) > 1:
                split_target = min(target, max(1, -(-split_bytes // int(min_shards))))
            out = _SplitWriter(split_name, state, store, scratch, split_target)
            pos = int(out.sp["next"])
            while pos < len(idx):
                chunk = [items[i] for i in idx[pos : pos + _CHUNK]]
                files = [it for it in chunk if it.path is not None]
                chunk_report = SkipReport()
                checked = {}
                if files:
                    results = _check_files(
                        [it.path for it in files], check_config, max_pixels, on_error, chunk_report
                    )
                    checked = {it.key: r for it, r in zip(files, results)}
                failed = iter(chunk_report.items)  # in the order of the files refused
                for offset, item in enumerate(chunk):
                    if item.path is None:
                        image = arrays[item.index]
                        h, w = image.shape[:2]
                        fmt = reencode or "png"
                        data = _encode(image, fmt)
                        is_jpeg, orientation = int(fmt == "jpeg"), 1
                    else:
                        result = checked.get(item.key)
                        if result is None:
                            skip = next(failed)
                            report.add(skip.path, skip.reason)
                            out.skips.append({"path": skip.path, "reason": skip.reason})
                            continue
                        # (fingerprint, height, width, is_jpeg, ratio, orientation)
                        h, w, is_jpeg, orientation = result[1], result[2], result[3], result[5]
                        with open(item.path, "rb") as f:
                            data = f.read()
                        if reencode is not None:
                            from keras_cnnkit.data._read import decode_bytes

                            pixels = decode_bytes(item.path, data, check_config, max_pixels, False)
                            data = _encode(pixels, reencode)
                            is_jpeg, orientation = int(reencode == "jpeg"), 1
                    record = _example(
                        data, item.label, item.key, int(h), int(w), int(is_jpeg), int(orientation)
                    )
                    out.write(record, h, w, bool(is_jpeg), int(orientation) != 1)
                    if out.full:
                        out.close(pos + offset + 1)
                pos += len(chunk)
                if callback is not None:
                    done_bytes += sum(size_of(it) for it in chunk)
                    callback(min(done_bytes, total), total)
            out.close(len(idx))
            written_images += out.images
            written_bytes += out.bytes
    finally:
        from keras_cnnkit.io._files import remove

        remove(scratch)
    if callback is not None:
        callback(total, total)
    splits = {}
    for split_name, sp in state["splits"].items():
        splits[split_name] = {
            "count": sum(s["count"] for s in sp["shards"]),
            "shards": sp["shards"],
            "max_height": sp["max_height"],
            "max_width": sp["max_width"],
            "kinds": sp.get("kinds", {"jpeg": 0, "other": 0, "turned": 0}),
        }
    if not any(s["count"] for s in splits.values()):
        raise DataError(f"pack: no readable images among {len(items)} file(s):\n{report.summary()}")
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "class_names": list(names),
        "features": {
            "image": "encoded image bytes" + ("" if reencode is None else f" ({reencode})"),
            "label": "int64",
            "filename": "source path relative to the folder (the split key)",
            "height": "int64",
            "width": "int64",
            "is_jpeg": "int64 (1: JPEG)",
            "orientation": "int64 (EXIF orientation, 1..8)",
        },
        "split": {
            "validation_split": validation_split,
            "seed": int(seed),
            "method": "keras_cnnkit.data.split_indices",
        },
        "splits": splits,
        "skipped": [{"path": s.path, "reason": s.reason} for s in report],
        "reencode": reencode,
        "source": desc.split(":", 1)[-1],
    }
    store.put_json(MANIFEST, manifest)
    store.delete(STATE)
    return PackResult(
        manifest=manifest,
        manifest_uri=store.uri(MANIFEST),
        report=report,
        num_images=written_images,
        bytes=written_bytes,
        seconds=time.monotonic() - start,
        resumed=resumed,
    )
