"""The folder manifest protocol of :mod:`keras_cnnkit.io.gcs`.

A folder uploaded to a bucket is complete only once its manifest object, written last,
lists every file with its size and crc32c. Readers take a folder without a manifest as
an unfinished upload, and check every file against the manifest before using it. This
module holds the protocol itself (names, the manifest's content and its checks); the
transfers that follow it live in :mod:`keras_cnnkit.io.gcs`.
"""

from __future__ import annotations

import datetime
import json
import pathlib
from collections.abc import Sequence

from keras_cnnkit._version import __version__
from keras_cnnkit.errors import IntegrityError

#: Name of the manifest object written last under an uploaded folder's prefix.
MANIFEST_NAME = ".keras_cnnkit-manifest.json"
MANIFEST_FORMAT = "keras_cnnkit.gcs-manifest"


def manifest_object(prefix: str) -> str:
    """The object name of the manifest of the folder under ``prefix`` (``""``: the bucket)."""
    return f"{prefix}/{MANIFEST_NAME}" if prefix else MANIFEST_NAME


def encode_manifest(entries: Sequence[dict]) -> str:
    """The manifest listing ``entries`` (dicts of ``path``, ``size``, ``crc32c``), as JSON.

    Example:
        >>> from keras_cnnkit.io._manifest import decode_manifest, encode_manifest
        >>> text = encode_manifest([{"path": "a.bin", "size": 3, "crc32c": "AAAAAA=="}])
        >>> decode_manifest(text.encode(), "gs://b/f/")["files"][0]["path"]
        'a.bin'
    """
    manifest = {
        "format_name": MANIFEST_FORMAT,
        "format_version": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "keras_cnnkit_version": __version__,
        "files": list(entries),
    }
    return json.dumps(manifest, indent=2)


def decode_manifest(data: bytes, uri: str) -> dict:
    """Parse and check a manifest read from the folder ``uri``.

    Raises:
        IntegrityError: The manifest is not one of ours, lacks an entry's size or
            checksum, or names a path outside its folder.
    """
    try:
        manifest = json.loads(data)
        if manifest.get("format_name") != MANIFEST_FORMAT:
            raise ValueError("not a keras_cnnkit manifest")
        for entry in manifest["files"]:
            rel = pathlib.PurePosixPath(entry["path"])
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise ValueError(f"unsafe path {entry['path']!r}")
            int(entry["size"]), str(entry["crc32c"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IntegrityError(f"the manifest of {uri!r} is invalid: {exc}") from None
    return manifest


def check_listed(blob, entry: dict, file_uri: str, uri: str) -> None:
    """Check that the object ``blob`` (or ``None``: absent) is the file ``entry`` lists.

    Raises:
        IntegrityError: The object is missing, or its crc32c or size differ from the
            manifest's (it was changed after the upload).
    """
    if blob is None:
        raise IntegrityError(
            f"{file_uri!r} is listed in the manifest of {uri!r} but does not exist"
        )
    if blob.crc32c != entry["crc32c"] or int(blob.size) != int(entry["size"]):
        raise IntegrityError(
            f"{file_uri!r} does not match the manifest of {uri!r} (crc32c "
            f"{blob.crc32c}, size {blob.size}; manifest: {entry['crc32c']}, "
            f"{entry['size']}): it was changed after the upload"
        )
