"""Google Cloud Storage upload and download that lose nothing.

* Files are streamed: large ones go through resumable uploads in chunks of
  :attr:`GCSOptions.chunk_size`, never read whole into memory.
* Every transfer is checked by crc32c against what the server reports; a mismatch
  raises :class:`~keras_cnnkit.errors.IntegrityError` and the bad copy is removed.
* Nothing is overwritten unless asked (``if_generation_match=0``); with
  ``overwrite=True`` an object is replaced only when its new content is complete.
* A folder (e.g. a SavedModel) is uploaded file by file, then a manifest object
  listing every file with its size and crc32c is written last. A download reads the
  manifest and checks every file against it, so a partial upload is never taken for a
  complete one.
* Downloads go to a temporary name and are renamed into place once verified.
* Requests are retried until a deadline the caller sets. Credentials come from
  Application Default Credentials or an explicit client; ``STORAGE_EMULATOR_HOST``
  points the client at a local server. Credentials never appear in logs or errors.

``google-cloud-storage`` is imported only when a function here is called (the ``gcs``
extra).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import pathlib
import time
from typing import Any

from keras_cnnkit._optional import require
from keras_cnnkit.errors import DataError, IntegrityError, StorageError
from keras_cnnkit.io import _files
from keras_cnnkit.io._checksums import (  # noqa: F401  (also used by keras_cnnkit.data)
    _b64,
    _crc32c,
    _HashingReader,
    _HashingWriter,
    _held_back,
)
from keras_cnnkit.io._gcs_client import (  # noqa: F401  (also used by keras_cnnkit.data)
    _check_bucket,
    _client,
    _errors,
    _redact,
    _retry,
    parse_uri,
)
from keras_cnnkit.io._manifest import (  # noqa: F401  (the MANIFEST_* names are public here)
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    check_listed,
    decode_manifest,
    encode_manifest,
    manifest_object,
)
from keras_cnnkit.io._progress import ProgressCallback, make_callback
from keras_cnnkit.io.metadata import SIDECAR_SUFFIX, sidecar_path

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "GCSOptions",
    "TransferResult",
    "delete",
    "download",
    "ensure_absent",
    "exists",
    "parse_uri",
    "upload",
]

logger = logging.getLogger(__name__)

MiB = 1 << 20
_CHUNK_UNIT = 256 * 1024  # resumable upload chunks must be a multiple of 256 KiB


@dataclasses.dataclass(frozen=True)
class GCSOptions:
    """How to reach Google Cloud Storage.

    With no ``client``, a ``google.cloud.storage.Client`` is created from
    ``project`` and ``credentials``, or from Application Default Credentials (``gcloud
    auth application-default login``, a service account on GCP, or
    ``GOOGLE_APPLICATION_CREDENTIALS``). When ``STORAGE_EMULATOR_HOST`` is set, that
    server is used without credentials.

    Attributes:
        client: A ready ``google.cloud.storage.Client`` (used as is, not closed).
        project: Billing project for a new client.
        credentials: ``google.auth`` credentials for a new client (never logged).
        timeout: Seconds each HTTP request may take.
        deadline: Seconds a failing request (or upload chunk) is retried before giving up.
        chunk_size: Bytes per resumable upload chunk (a multiple of 256 KiB); files up
            to 8 MiB are sent in one request.

    Example:
        >>> GCSOptions(deadline=30).deadline
        30
    """

    client: Any = dataclasses.field(default=None, repr=False)
    project: str | None = None
    credentials: Any = dataclasses.field(default=None, repr=False)
    timeout: float = 60.0
    deadline: float = 300.0
    chunk_size: int = 16 * MiB

    def __post_init__(self):
        if int(self.chunk_size) <= 0 or int(self.chunk_size) % _CHUNK_UNIT:
            raise DataError(
                f"GCSOptions.chunk_size must be a positive multiple of 256 KiB, "
                f"got {self.chunk_size!r}"
            )
        if not float(self.timeout) > 0 or not float(self.deadline) > 0:
            raise DataError(
                f"GCSOptions.timeout and deadline must be positive, got timeout="
                f"{self.timeout!r}, deadline={self.deadline!r}"
            )


@dataclasses.dataclass
class TransferResult:
    """What an :func:`upload` or :func:`download` moved.

    Attributes:
        uri: The ``gs://`` URI of the object or folder prefix.
        local: The local file or folder.
        files: One entry per file: ``path`` (relative to the folder, or the object
            name), ``size`` and ``crc32c`` (base64, as GCS reports it).
        bytes: Total bytes moved.
        seconds: Wall time of the transfer.
    """

    uri: str
    local: pathlib.Path
    files: list[dict]
    bytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB/s (10^6 bytes)."""
        return self.bytes / max(self.seconds, 1e-9) / 1e6


def upload(
    source: str | os.PathLike,
    uri: str,
    *,
    overwrite: bool = False,
    progress: bool | ProgressCallback = True,
    gcs: GCSOptions | None = None,
) -> TransferResult:
    """Upload a file or a folder to Google Cloud Storage, verified by crc32c.

    A file goes to ``uri`` itself, or to ``uri + file name`` when ``uri`` ends with
    ``/``; a model file's metadata (``<file>.json``, written by
    :func:`keras_cnnkit.io.save`) goes with it, as one unit: after any interruption
    the object in place still matches its metadata object. A folder goes under the
    prefix ``uri/``, file by file, followed by a manifest object
    (``.keras_cnnkit-manifest.json``) listing every file and its checksum;
    :func:`download` requires it.

    Args:
        source: Local file or folder.
        uri: Destination ``gs://bucket/name``.
        overwrite: Replace existing objects. A replaced file object changes only when
            the new upload is complete; for a folder the old manifest is removed first,
            so readers see either the complete new folder or no manifest, and objects
            left over from the old folder are deleted at the end.
        progress: ``True`` for a progress bar on stderr, ``False`` for none, or a
            callable ``(done_bytes, total_bytes)``.
        gcs: Client, credentials, timeouts, retry deadline and chunk size.

    Returns:
        A :class:`TransferResult`.

    Raises:
        StorageError: If the source is missing, the destination exists and
            ``overwrite`` is false, the bucket does not exist, access is denied, or
            the server cannot be reached before the retry deadline. No object is left at
            the destination of an interrupted file upload.
        IntegrityError: If the server's checksum differs from the local file's.
        MissingDependencyError: If google-cloud-storage is not installed.

    Example:
        >>> upload("export/", "gs://my-bucket/models/v1")  # doctest: +SKIP
    """
    source = pathlib.Path(source)
    bucket_name, name = parse_uri(uri)
    opts = gcs if gcs is not None else GCSOptions()
    if not source.exists():
        raise StorageError(f"cannot upload {str(source)!r}: it does not exist")
    start = time.monotonic()
    with _client(opts) as client:
        bucket = client.bucket(bucket_name)
        if source.is_dir():
            prefix = name.rstrip("/")
            if not prefix:
                raise DataError(
                    f"uploading a folder needs a prefix: gs://{bucket_name}/NAME, got {uri!r}"
                )
            files = _upload_folder(client, opts, bucket, source, prefix, overwrite, progress, uri)
            result_uri = f"gs://{bucket_name}/{prefix}"
        else:
            if not name or name.endswith("/"):
                name = name + source.name
            result_uri = f"gs://{bucket_name}/{name}"
            size = source.stat().st_size
            callback = make_callback(progress, result_uri)
            files = _upload_with_metadata(
                client, opts, bucket, source, name, overwrite, callback, size
            )
    total = sum(f["size"] for f in files)
    return TransferResult(result_uri, source, files, total, time.monotonic() - start)


def download(
    uri: str,
    dest: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool | ProgressCallback = True,
    gcs: GCSOptions | None = None,
) -> TransferResult:
    """Download an object or an uploaded folder, verified by crc32c.

    If ``uri`` names an object, it is downloaded to ``dest`` (or into ``dest`` when
    that is an existing folder), with its metadata object (``<uri>.json``) when it
    has one. Missing parent folders of ``dest`` are created. Otherwise ``uri`` must
    be a folder written by :func:`upload`: its manifest is read and every file
    listed is downloaded and checked against it. A prefix holding objects but no
    manifest is refused, as its upload did not finish. Data goes to a temporary name
    beside ``dest`` and is renamed into place only after every check passed.

    Args:
        uri: Source ``gs://bucket/name``.
        dest: Local destination file or folder.
        overwrite: Replace an existing ``dest``.
        progress: ``True`` for a progress bar on stderr, ``False`` for none, or a
            callable ``(done_bytes, total_bytes)``.
        gcs: Client, credentials, timeouts and retry deadline.

    Returns:
        A :class:`TransferResult`.

    Raises:
        StorageError: If nothing exists at ``uri``, ``dest`` exists and ``overwrite``
            is false, access is denied, or the server cannot be reached in time.
        IntegrityError: If data does not match the server's or the manifest's
            checksum, or a folder has no manifest.
        MissingDependencyError: If google-cloud-storage is not installed.

    Example:
        >>> download("gs://my-bucket/models/v1", "serving/1")  # doctest: +SKIP
    """
    bucket_name, name = parse_uri(uri)
    opts = gcs if gcs is not None else GCSOptions()
    dest = pathlib.Path(dest)
    start = time.monotonic()
    with _client(opts) as client:
        bucket = client.bucket(bucket_name)
        blob = None
        if name and not name.endswith("/"):
            with _errors("reading", uri, client, opts):
                blob = bucket.get_blob(name, timeout=opts.timeout, retry=_retry(opts))
        if blob is not None:
            if dest.is_dir():
                dest = dest / name.rsplit("/", 1)[-1]
            _files.check_writable(dest, overwrite)
            metadata = _read_metadata_object(client, opts, bucket, name)
            callback = make_callback(progress, str(dest))
            files = [_download_file(client, opts, blob, dest, callback, blob.size, metadata)]
        else:
            files = _download_folder(
                client, opts, bucket, name.rstrip("/"), dest, overwrite, progress, uri
            )
    total = sum(f["size"] for f in files)
    return TransferResult(uri, dest, files, total, time.monotonic() - start)


def exists(uri: str, *, gcs: GCSOptions | None = None) -> bool:
    """Whether an object exists at ``uri``.

    Args:
        uri: ``gs://bucket/name``.
        gcs: Client, credentials, timeouts and retry deadline.

    Returns:
        ``True`` if the object exists.

    Raises:
        StorageError: If the bucket does not exist or the server cannot be reached.

    Example:
        >>> exists("gs://my-bucket/models/m.keras")  # doctest: +SKIP
        True
    """
    bucket_name, name = parse_uri(uri)
    opts = gcs if gcs is not None else GCSOptions()
    with _client(opts) as client, _errors("reading", uri, client, opts):
        blob = client.bucket(bucket_name).get_blob(name, timeout=opts.timeout, retry=_retry(opts))
        if blob is None:
            _check_bucket(client, opts, bucket_name, uri)
        return blob is not None


def ensure_absent(uri: str, *, folder: bool = False, gcs: GCSOptions | None = None) -> None:
    """Raise unless nothing exists at ``uri`` (an object, or a folder prefix).

    Args:
        uri: ``gs://bucket/name``.
        folder: Check the prefix ``uri/`` instead of the object ``uri``.
        gcs: Client, credentials, timeouts and retry deadline.

    Raises:
        StorageError: If something exists there, or the bucket does not exist.

    Example:
        >>> ensure_absent("gs://my-bucket/models/v2", folder=True)  # doctest: +SKIP
    """
    bucket_name, name = parse_uri(uri)
    opts = gcs if gcs is not None else GCSOptions()
    with _client(opts) as client, _errors("checking", uri, client, opts):
        bucket = client.bucket(bucket_name)
        if folder:
            found = list(
                client.list_blobs(
                    bucket,
                    prefix=name.rstrip("/") + "/",
                    max_results=1,
                    timeout=opts.timeout,
                    retry=_retry(opts),
                )
            )
        else:
            found = [bucket.get_blob(name, timeout=opts.timeout, retry=_retry(opts))]
            found = [b for b in found if b is not None]
        if found:
            what = "already holds objects" if folder else "already exists"
            raise StorageError(f"{uri!r} {what}; pass overwrite=True to replace it")
        _check_bucket(client, opts, bucket_name, uri)


def delete(uri: str, *, folder: bool = False, gcs: GCSOptions | None = None) -> int:
    """Delete an object, or every object under a folder prefix; absent is not an error.

    A folder's manifest goes first, so a reader never sees it as complete while
    its files are being deleted.

    Args:
        uri: ``gs://bucket/name``.
        folder: Delete everything under the prefix ``uri/`` instead of the object ``uri``.
        gcs: Client, credentials, timeouts and retry deadline.

    Returns:
        The number of objects deleted.

    Raises:
        StorageError: If the bucket does not exist or the server cannot be reached.

    Example:
        >>> delete("gs://my-bucket/runs/old", folder=True)  # doctest: +SKIP
        3
    """
    bucket_name, name = parse_uri(uri)
    opts = gcs if gcs is not None else GCSOptions()
    not_found = require("google.api_core.exceptions", "gcs").NotFound
    with _client(opts) as client, _errors("deleting", uri, client, opts):
        bucket = client.bucket(bucket_name)
        if folder:
            prefix = name.rstrip("/") + "/"
            names = [
                b.name
                for b in client.list_blobs(
                    bucket, prefix=prefix, timeout=opts.timeout, retry=_retry(opts)
                )
            ]
            manifest = prefix + MANIFEST_NAME
            names.sort(key=lambda n: n != manifest)
        else:
            names = [name]
        deleted = 0
        for blob_name in names:
            try:
                bucket.blob(blob_name).delete(timeout=opts.timeout, retry=_retry(opts))
                deleted += 1
            except not_found:
                continue
        if not deleted:
            _check_bucket(client, opts, bucket_name, uri)
    return deleted


# --------------------------------------------------------------------------- internals


def _upload_file(
    client, opts, bucket, source: pathlib.Path, name: str, overwrite: bool, callback, size: int
) -> dict:
    uri = f"gs://{bucket.name}/{name}"
    retry = _retry(opts)
    with _errors("uploading to", uri, client, opts):
        existing = bucket.get_blob(name, timeout=opts.timeout, retry=retry)
        if existing is not None and not overwrite:
            raise StorageError(f"{uri!r} already exists; pass overwrite=True to replace it")
        # Replace exactly the generation seen (0: the object must not exist), so a
        # concurrent writer is never silently overwritten.
        generation = existing.generation if existing is not None else 0
        blob = bucket.blob(name, chunk_size=int(opts.chunk_size))
        with open(source, "rb") as raw:
            reader = _HashingReader(raw, size, _held_back(callback, size))
            blob.upload_from_file(
                reader,
                size=size,
                content_type="application/octet-stream",
                checksum="crc32c",
                if_generation_match=generation,
                timeout=opts.timeout,
                retry=retry,
            )
        if reader.hashed != size:
            raise StorageError(f"{str(source)!r} changed size while it was uploaded")
        local_crc = _b64(reader.checksum)
        if blob.crc32c != local_crc or blob.size is None or int(blob.size) != size:
            with contextlib.suppress(Exception):
                blob.delete(if_generation_match=blob.generation, timeout=opts.timeout)
            raise IntegrityError(
                f"uploading {str(source)!r} to {uri!r}: the server reports crc32c "
                f"{blob.crc32c} and size {blob.size}, the file has {local_crc} and {size}; "
                "the object was deleted"
            )
        if callback is not None:  # 100 % only once the server confirmed the object
            callback(size, size)
    logger.info("uploaded %s (%d bytes, crc32c %s)", uri, size, local_crc)
    return {"path": name, "size": size, "crc32c": local_crc}


def _download_file(
    client, opts, blob, dest: pathlib.Path, callback, size: int, metadata: dict | None = None
) -> dict:
    """Download one object to ``dest`` (with its metadata file when ``metadata`` is given)."""
    uri = f"gs://{blob.bucket.name}/{blob.name}"
    expected = blob.crc32c
    if not expected:
        raise IntegrityError(f"{uri!r}: the server reports no crc32c, so it cannot be verified")
    if metadata is not None:
        target = _files.atomic_pair(dest, sidecar_path(dest))
    else:
        target = _files.atomic_path(dest)
    with _errors("downloading", uri, client, opts), target as pending:
        tmp = pending.tmp if metadata is not None else pending
        if metadata is not None:
            pending.metadata = metadata
        with open(tmp, "wb") as raw:
            writer = _HashingWriter(raw, size, _held_back(callback, size))
            # The crc32c is checked here, against the metadata of exactly this
            # generation, rather than a second time inside the client library.
            blob.download_to_file(
                writer,
                checksum=None,
                if_generation_match=blob.generation,
                timeout=opts.timeout,
                retry=_retry(opts),
            )
        got = _b64(writer.checksum)
        if got != expected or writer.size != size:
            raise IntegrityError(
                f"downloading {uri!r}: the data received does not match the checksum the "
                f"server reports ({writer.size} bytes with crc32c {got}; expected {size} bytes "
                f"with crc32c {expected}); nothing was kept"
            )
    if callback is not None:
        callback(size, size)
    logger.info("downloaded %s to %s (%d bytes)", uri, dest, size)
    return {"path": blob.name, "size": size, "crc32c": expected}


def _upload_with_metadata(
    client, opts, bucket, source: pathlib.Path, name: str, overwrite: bool, callback, size: int
) -> list[dict]:
    """Upload a file, and its metadata file (``<file>.json``) as one unit when it has one.

    When an older metadata object exists, the new metadata goes up first holding the
    older under ``"replaces"``, then the file, then the metadata again without it: the
    object in place always matches the metadata object or the metadata it replaces.
    """
    side = sidecar_path(source)
    if not side.is_file() or source.name.endswith(SIDECAR_SUFFIX):
        return [_upload_file(client, opts, bucket, source, name, overwrite, callback, size)]
    side_name = name + SIDECAR_SUFFIX
    uri = f"gs://{bucket.name}/{name}"
    final = json.loads(side.read_text(encoding="utf-8"))
    final["replaces"] = None
    retry = _retry(opts)
    with _errors("uploading to", uri, client, opts):
        if not overwrite:
            for existing in (name, side_name):
                if bucket.get_blob(existing, timeout=opts.timeout, retry=retry) is not None:
                    raise StorageError(
                        f"'gs://{bucket.name}/{existing}' already exists; pass overwrite=True "
                        "to replace it"
                    )
        previous = _read_metadata_object(client, opts, bucket, name)
        if previous is not None:
            previous.pop("replaces", None)
            _put_json(opts, bucket, side_name, {**final, "replaces": previous})
    entry = _upload_file(client, opts, bucket, source, name, overwrite, callback, size)
    with _errors("uploading to", uri, client, opts):
        _put_json(opts, bucket, side_name, final)
    side_size = side.stat().st_size
    return [entry, {"path": side_name, "size": side_size, "crc32c": ""}]


def _put_json(opts, bucket, name: str, data: dict) -> None:
    bucket.blob(name).upload_from_string(
        json.dumps(data, indent=2, sort_keys=True) + "\n",
        content_type="application/json",
        checksum="crc32c",
        timeout=opts.timeout,
        retry=_retry(opts),
    )


def _read_metadata_object(client, opts, bucket, name: str) -> dict | None:
    """The metadata object beside ``name`` (``<name>.json``) as a dict, or ``None``."""
    if name.endswith(SIDECAR_SUFFIX):
        return None
    side_name = name + SIDECAR_SUFFIX
    with _errors("reading", f"gs://{bucket.name}/{side_name}", client, opts):
        blob = bucket.get_blob(side_name, timeout=opts.timeout, retry=_retry(opts))
        if blob is None:
            return None
        data = blob.download_as_bytes(checksum="crc32c", timeout=opts.timeout, retry=_retry(opts))
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _folder_files(source: pathlib.Path) -> list[tuple[pathlib.Path, str]]:
    files = []
    for path in sorted(source.rglob("*")):
        if path.is_dir():
            continue
        if not path.is_file():
            raise StorageError(f"cannot upload {str(path)!r}: not a regular file")
        files.append((path, path.relative_to(source).as_posix()))
    if not files:
        raise StorageError(f"cannot upload folder {str(source)!r}: it holds no files")
    return files


def _upload_folder(client, opts, bucket, source, prefix, overwrite, progress, uri) -> list[dict]:
    folder_uri = f"gs://{bucket.name}/{prefix}/"
    files = _folder_files(source)
    total = sum(path.stat().st_size for path, _ in files)
    manifest_name = manifest_object(prefix)
    retry = _retry(opts)
    with _errors("uploading to", folder_uri, client, opts):
        old = [
            b.name
            for b in client.list_blobs(
                bucket, prefix=prefix + "/", timeout=opts.timeout, retry=retry
            )
        ]
        if old and not overwrite:
            raise StorageError(
                f"{folder_uri!r} already holds {len(old)} object(s); pass overwrite=True to "
                "replace the folder"
            )
        if manifest_name in old:
            # Without its manifest the old folder reads as incomplete while it is replaced.
            bucket.blob(manifest_name).delete(timeout=opts.timeout, retry=retry)

    callback = make_callback(progress, folder_uri)
    done = 0

    def file_progress(n, _total):
        if callback is not None:
            callback(done + n, total)

    entries = []
    for path, rel in files:
        size = path.stat().st_size
        entry = _upload_file(
            client, opts, bucket, path, f"{prefix}/{rel}", overwrite, file_progress, size
        )
        entries.append({"path": rel, "size": size, "crc32c": entry["crc32c"]})
        done += size
        file_progress(0, total)
    if callback is not None and total == 0:
        callback(0, 0)

    with _errors("writing the manifest of", folder_uri, client, opts):
        bucket.blob(manifest_name).upload_from_string(
            encode_manifest(entries),
            content_type="application/json",
            checksum="crc32c",
            if_generation_match=0,
            timeout=opts.timeout,
            retry=retry,
        )
        stale = set(old) - {f"{prefix}/{e['path']}" for e in entries} - {manifest_name}
        for name in sorted(stale):
            with contextlib.suppress(require("google.api_core.exceptions", "gcs").NotFound):
                bucket.blob(name).delete(timeout=opts.timeout, retry=retry)
    logger.info("uploaded folder %s (%d files, %d bytes)", folder_uri, len(entries), total)
    return entries


def _read_manifest(client, opts, bucket, prefix: str, uri: str) -> dict | None:
    with _errors("reading", uri, client, opts):
        blob = bucket.get_blob(manifest_object(prefix), timeout=opts.timeout, retry=_retry(opts))
        if blob is None:
            return None
        data = blob.download_as_bytes(checksum="crc32c", timeout=opts.timeout, retry=_retry(opts))
    return decode_manifest(data, uri)


def _download_folder(client, opts, bucket, prefix, dest, overwrite, progress, uri) -> list[dict]:
    manifest = _read_manifest(client, opts, bucket, prefix, uri)
    if manifest is None:
        with _errors("reading", uri, client, opts):
            listed = list(
                client.list_blobs(
                    bucket,
                    prefix=prefix + "/" if prefix else None,
                    max_results=1,
                    timeout=opts.timeout,
                    retry=_retry(opts),
                )
            )
            if not listed:
                _check_bucket(client, opts, bucket.name, uri)
                raise StorageError(f"nothing found at {uri!r}: no object and no folder")
        raise IntegrityError(
            f"{uri!r} holds objects but no manifest: its upload did not finish (or it was not "
            "written by keras_cnnkit.io.upload), so it may be incomplete; upload it again"
        )
    _files.check_writable(dest, overwrite)
    entries = manifest["files"]
    total = sum(int(e["size"]) for e in entries)
    callback = make_callback(progress, str(dest))
    blobs = []
    for entry in entries:
        name = f"{prefix}/{entry['path']}" if prefix else entry["path"]
        file_uri = f"gs://{bucket.name}/{name}"
        with _errors("downloading", file_uri, client, opts):
            blob = bucket.get_blob(name, timeout=opts.timeout, retry=_retry(opts))
        check_listed(blob, entry, file_uri, uri)
        blobs.append((blob, entry))
    _files.remove_stale_temps(dest)
    tmp = _files.temp_sibling(dest)
    try:
        tmp.mkdir(parents=True)
        _download_many(client, opts, blobs, tmp, callback, total, uri)
        if callback is not None:
            callback(total, total)
        _files.replace_dir(tmp, dest)
    finally:
        _files.remove(tmp)
    logger.info("downloaded folder %s to %s (%d files)", uri, dest, len(entries))
    return [dict(e) for e in entries]


def _download_many(client, opts, blobs, folder: pathlib.Path, callback, total: int, uri: str):
    """Download ``(blob, manifest entry)`` pairs into ``folder``, several at a time.

    Uses google-cloud-storage's transfer manager (threads, one request per object);
    each file's crc32c is computed while it is written and checked against the
    manifest, and every file is flushed to disk before the folder is renamed into place.
    """
    import threading

    from google.cloud.storage import transfer_manager

    lock = threading.Lock()
    done = dict.fromkeys(range(len(blobs)), 0)

    def progress(index):
        def report(n, _size):
            if callback is None:
                return
            with lock:
                done[index] = n
                callback(min(sum(done.values()), max(total - 1, 0)), total)

        return report

    handles, writers = [], []
    try:
        for index, (_, entry) in enumerate(blobs):
            local = folder.joinpath(*pathlib.PurePosixPath(entry["path"]).parts)
            local.parent.mkdir(parents=True, exist_ok=True)
            raw = open(local, "wb")  # noqa: SIM115 - closed below, after all downloads
            handles.append(raw)
            writers.append(_HashingWriter(raw, int(entry["size"]), progress(index)))
        with _errors("downloading", uri, client, opts):
            results = transfer_manager.download_many(
                [(blob, writer) for (blob, _), writer in zip(blobs, writers)],
                download_kwargs={"checksum": None, "timeout": opts.timeout, "retry": _retry(opts)},
                worker_type=transfer_manager.THREAD,
                max_workers=8,
                raise_exception=True,
            )
        for result in results:
            if isinstance(result, Exception):
                raise result
    finally:
        for raw in handles:
            raw.close()
    for (blob, entry), writer in zip(blobs, writers):
        got = _b64(writer.checksum)
        if got != entry["crc32c"] or writer.size != int(entry["size"]):
            raise IntegrityError(
                f"downloading gs://{blob.bucket.name}/{blob.name}: the data received does not "
                f"match the manifest of {uri!r} ({writer.size} bytes with crc32c {got}; "
                f"expected {entry['size']} bytes with crc32c {entry['crc32c']}); nothing was kept"
            )
        logger.info("downloaded gs://%s/%s (%d bytes)", blob.bucket.name, blob.name, writer.size)
