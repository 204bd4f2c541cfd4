"""Where packed shards live: a local folder or a ``gs://bucket/prefix``, one small interface.

Local writes are atomic (temporary sibling, fsync, rename); ``gs://`` transfers go
through :mod:`keras_cnnkit.io.gcs` (google-cloud-storage, crc32c-verified, and testable
against a local emulator through ``STORAGE_EMULATOR_HOST``).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

from keras_cnnkit.errors import DataError, StorageError


def is_remote(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a ``gs://`` URI."""
    return isinstance(location, str) and location.startswith("gs://")


class Store:
    """A folder of named files: local, or objects under a ``gs://`` prefix.

    Args:
        location: A local folder or ``gs://bucket/prefix``.
        gcs: :class:`keras_cnnkit.io.GCSOptions` for ``gs://`` locations.
    """

    def __init__(self, location: str | os.PathLike, gcs=None):
        self.remote = is_remote(location)
        self.gcs = gcs
        if self.remote:
            from keras_cnnkit.io.gcs import parse_uri

            bucket, prefix = parse_uri(str(location))
            self.location = f"gs://{bucket}/{prefix.strip('/')}".rstrip("/")
        else:
            self.location = os.fspath(location)

    def uri(self, name: str) -> str:
        """The full path or URI of ``name``."""
        if self.remote:
            return f"{self.location}/{name}"
        return os.path.join(self.location, name)

    def exists(self, name: str) -> bool:
        """Whether ``name`` exists."""
        if self.remote:
            from keras_cnnkit.io.gcs import exists

            return exists(self.uri(name), gcs=self.gcs)
        return os.path.isfile(self.uri(name))

    def put_file(self, local: pathlib.Path, name: str) -> None:
        """Move the finished file ``local`` to ``name``, whole or not at all."""
        if self.remote:
            from keras_cnnkit.io.gcs import upload

            upload(local, self.uri(name), overwrite=True, progress=False, gcs=self.gcs)
            return
        from keras_cnnkit.io._files import atomic_path

        with atomic_path(pathlib.Path(self.uri(name))) as tmp:
            shutil.move(os.fspath(local), tmp)

    def put_json(self, name: str, data: dict) -> None:
        """Write ``data`` as JSON to ``name``, whole or not at all."""
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        if not self.remote:
            from keras_cnnkit.io._files import write_text

            write_text(self.uri(name), text)
            return
        with tempfile.TemporaryDirectory(prefix="cnnkit-") as tmp:
            path = pathlib.Path(tmp) / name
            path.write_text(text, encoding="utf-8")
            self.put_file(path, name)

    def get_file(self, name: str, dest: pathlib.Path) -> None:
        """Copy ``name`` to the local file ``dest`` (replacing it)."""
        if self.remote:
            from keras_cnnkit.io.gcs import download

            download(self.uri(name), dest, overwrite=True, progress=False, gcs=self.gcs)
        else:
            shutil.copyfile(self.uri(name), dest)

    def get_json(self, name: str) -> dict | None:
        """The JSON object stored at ``name``, or ``None`` when there is none."""
        if not self.exists(name):
            return None
        if self.remote:
            with tempfile.TemporaryDirectory(prefix="cnnkit-") as tmp:
                path = pathlib.Path(tmp) / "data.json"
                self.get_file(name, path)
                text = path.read_text(encoding="utf-8")
        else:
            text = pathlib.Path(self.uri(name)).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{self.uri(name)} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise DataError(f"{self.uri(name)} does not hold a JSON object")
        return data

    def delete(self, name: str) -> None:
        """Remove ``name`` if it exists."""
        if self.remote:
            from keras_cnnkit.io.gcs import delete

            delete(self.uri(name), gcs=self.gcs)
        else:
            try:
                os.remove(self.uri(name))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError(f"cannot remove {self.uri(name)!r}: {exc}") from exc

    def list(self, prefix: str = "") -> list[str]:
        """Names of the files directly under the location that start with ``prefix``."""
        if self.remote:
            from keras_cnnkit.io.gcs import GCSOptions, _client, _errors, _retry, parse_uri

            opts = self.gcs if self.gcs is not None else GCSOptions()
            bucket_name, base = parse_uri(self.location)
            base = base.strip("/")
            full = (base + "/" if base else "") + prefix
            with _client(opts) as client, _errors("listing", self.location, client, opts):
                blobs = client.list_blobs(
                    client.bucket(bucket_name),
                    prefix=full,
                    timeout=opts.timeout,
                    retry=_retry(opts),
                )
                names = [b.name for b in blobs]
            cut = len(base) + 1 if base else 0
            return sorted(n[cut:] for n in names if "/" not in n[cut:])
        if not os.path.isdir(self.location):
            return []
        return sorted(
            n
            for n in os.listdir(self.location)
            if n.startswith(prefix) and os.path.isfile(os.path.join(self.location, n))
        )


def mirror_folder(uri: str, cache_dir: str | os.PathLike | None = None, gcs=None) -> pathlib.Path:
    """A local copy of the folder tree under ``gs://bucket/prefix``, for small data sets.

    Every object under the prefix is downloaded once (crc32c-checked) into the cache
    (``cache_dir``, ``$CNNKIT_SHARD_CACHE`` or ``~/.cache/keras_cnnkit/shards``); a file
    already there with the object's size and crc32c is kept. Objects that disappeared
    from the bucket are removed from the copy.

    Args:
        uri: ``gs://bucket/prefix`` of a folder tree (for example class folders of images).
        cache_dir: The cache folder.
        gcs: :class:`keras_cnnkit.io.GCSOptions`.

    Returns:
        The local folder.

    Raises:
        DataError: If nothing is stored under ``uri``.
        StorageError: If the bucket cannot be read.
    """
    import base64
    import hashlib

    from keras_cnnkit.data._shards import cache_root
    from keras_cnnkit.io._files import remove
    from keras_cnnkit.io.gcs import GCSOptions, _client, _crc32c, _errors, _retry, parse_uri

    bucket_name, prefix = parse_uri(uri)
    prefix = prefix.strip("/")
    opts = gcs if gcs is not None else GCSOptions()
    key = hashlib.sha256(f"{bucket_name}/{prefix}".encode()).hexdigest()[:16]
    root = cache_root(cache_dir) / "folders" / key
    wanted = set()
    with _client(opts) as client, _errors("reading", uri, client, opts):
        bucket = client.bucket(bucket_name)
        blobs = list(
            client.list_blobs(
                bucket,
                prefix=prefix + "/" if prefix else None,
                timeout=opts.timeout,
                retry=_retry(opts),
            )
        )
        if not blobs:
            raise DataError(f"{uri}: no objects under this prefix")
        for blob in blobs:
            rel = blob.name[len(prefix) + 1 :] if prefix else blob.name
            if not rel or rel.endswith("/"):
                continue
            dest = root / rel
            wanted.add(dest)
            if dest.is_file() and dest.stat().st_size == blob.size:
                crc = _crc32c()
                crc.update(dest.read_bytes())
                if base64.b64encode(crc.digest()).decode() == blob.crc32c:
                    continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
            try:
                blob.download_to_filename(
                    tmp, timeout=opts.timeout, retry=_retry(opts), checksum="crc32c"
                )
                os.replace(tmp, dest)
            finally:
                remove(tmp)
    for path in list(root.rglob("*")):
        if path.is_file() and path not in wanted:
            path.unlink()
    return root
