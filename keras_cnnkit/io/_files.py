"""Local file helpers: atomic writes, checksums and ``gs://`` URI parsing."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator

from keras_cnnkit.errors import StorageError

#: Read size used when hashing or copying files.
BLOCK = 1 << 20


def is_gcs_uri(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``gs://`` URI."""
    return isinstance(path, str) and path.startswith("gs://")


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_sibling(path: pathlib.Path, suffix: str = "") -> pathlib.Path:
    """A fresh hidden name in the same folder as ``path`` (same file system: atomic rename)."""
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}{suffix}")


def check_writable(path: pathlib.Path, overwrite: bool) -> None:
    """Raise if ``path`` exists and ``overwrite`` is false, or its folder is missing."""
    if path.exists() and not overwrite:
        raise StorageError(f"{str(path)!r} already exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise StorageError(
            f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist"
        )


@contextlib.contextmanager
def atomic_path(path: pathlib.Path, suffix: str = "") -> Iterator[pathlib.Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path`` atomically.

    On error the temporary file is removed and ``path`` is left untouched.
    ``suffix`` keeps a file extension some writers insist on (``.keras``).
    """
    tmp = temp_sibling(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        remove(tmp)


def replace_dir(tmp: pathlib.Path, dest: pathlib.Path) -> None:
    """Move the finished folder ``tmp`` to ``dest``, replacing an existing ``dest``.

    A rename cannot replace a non-empty folder, so the old one is first renamed aside
    and removed only once the new one is in place.
    """
    old = None
    if dest.exists() or dest.is_symlink():
        old = temp_sibling(dest, ".old")
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        raise
    if old is not None:
        remove(old)


def remove(path: pathlib.Path) -> None:
    """Remove a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def scratch_dir() -> Iterator[pathlib.Path]:
    """A temporary folder removed on exit (used to stage ``gs://`` transfers)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="cnnkit-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
