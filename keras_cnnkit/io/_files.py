"""The one way keras_cnnkit writes a local file or folder, plus checksums and URI tests.

Every writer goes through :func:`atomic_path` (or :func:`write_bytes` /
:func:`replace_dir`): the data goes to a temporary name in the destination's folder,
is flushed to disk (``fsync``), renamed over the destination, and the folder itself is
fsynced, so after a crash or a kill the destination holds either the old or the new
content, never a mix. Temporary names carry the writing process's id; the next write to
the same destination removes the ones left by a process that no longer runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pathlib
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator

from keras_cnnkit.errors import StorageError

#: Read size used when hashing or copying files.
BLOCK = 1 << 20

_TEMP = re.compile(r"\.tmp-(?:(\d+)-)?[0-9a-f]{12}")


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
    """A fresh hidden name in the same folder as ``path`` (same file system: atomic rename).

    The name holds this process's id, so :func:`remove_stale_temps` can tell a write in
    progress from one a killed process left behind.
    """
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}{suffix}")


def remove_stale_temps(path: pathlib.Path) -> list[pathlib.Path]:
    """Remove the temporary siblings of ``path`` left by processes that no longer run.

    Args:
        path: The destination whose earlier, interrupted writes to clean up.

    Returns:
        What was removed.
    """
    removed = []
    prefix = f".{path.name}.tmp-"
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for candidate in candidates:
        match = _TEMP.match(candidate.name[len(path.name) + 1 :])
        if match is None:
            continue
        pid = int(match.group(1)) if match.group(1) else None
        if pid is not None and pid != os.getpid() and _alive(pid):
            continue  # another process is writing it now
        remove(candidate)
        removed.append(candidate)
    return removed


def remove_stale_temps_in(folder: pathlib.Path) -> list[pathlib.Path]:
    """Remove every temporary file or folder in ``folder`` left by a finished process."""
    removed = []
    try:
        names = [p for p in folder.iterdir() if ".tmp-" in p.name and p.name.startswith(".")]
    except OSError:
        return removed
    for candidate in names:
        dest = candidate.name[1 : candidate.name.index(".tmp-")]
        removed += remove_stale_temps(folder / dest)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_writable(path: pathlib.Path, overwrite: bool) -> None:
    """Raise if ``path`` exists and ``overwrite`` is false (its folder is created on write)."""
    if path.exists() and not overwrite:
        raise StorageError(f"{str(path)!r} already exists; pass overwrite=True to replace it")
    if path.parent.exists() and not path.parent.is_dir():
        raise StorageError(f"cannot write {str(path)!r}: {str(path.parent)!r} is not a folder")


def fsync(path: pathlib.Path) -> None:
    """Flush a file, or every file and folder under a folder, to disk."""
    if path.is_dir():
        for root, _, files in os.walk(path):
            for name in files:
                _fsync_one(pathlib.Path(root) / name, os.O_RDONLY)
            _fsync_dir(pathlib.Path(root))
    else:
        _fsync_one(path, os.O_RDONLY)


def _fsync_one(path: pathlib.Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: pathlib.Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
        _fsync_one(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _prepare(path: pathlib.Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create folder {str(path.parent)!r}: {exc}") from exc
    remove_stale_temps(path)


@contextlib.contextmanager
def atomic_path(path: pathlib.Path, suffix: str = "") -> Iterator[pathlib.Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path`` atomically.

    The folder of ``path`` is created when missing; temporary files of earlier writes to
    ``path`` killed before they finished are removed. On success the temporary file (or
    folder) is fsynced, renamed over ``path`` and the folder fsynced. On error the
    temporary file is removed and ``path`` is left untouched. ``suffix`` keeps a file
    extension some writers insist on (``.keras``).
    """
    path = pathlib.Path(path)
    _prepare(path)
    tmp = temp_sibling(path, suffix)
    try:
        yield tmp
        fsync(tmp)
        if tmp.is_dir():
            replace_dir(tmp, path)
        else:
            os.replace(tmp, path)
            _fsync_dir(path.parent)
    finally:
        remove(tmp)


@dataclasses.dataclass
class PendingPair:
    """A file being written by :func:`atomic_pair`: write :attr:`tmp`, set :attr:`metadata`."""

    tmp: pathlib.Path
    metadata: dict | None = None


@contextlib.contextmanager
def atomic_pair(
    path: pathlib.Path, sidecar: pathlib.Path, suffix: str = ""
) -> Iterator[PendingPair]:
    """Write a file and its metadata file (``sidecar``, JSON) as one unit.

    The caller writes the file to ``pending.tmp`` and sets ``pending.metadata`` (a
    dict holding the file's ``sha256``). Then, when an older metadata file exists, the
    new one is written first with the older one under ``"replaces"``; the file is
    renamed into place; and the metadata file is written again without
    ``"replaces"``. Whatever moment a kill strikes, the file in place matches either
    the metadata or the metadata it replaces, so it still verifies and loads.

    Args:
        path: The destination file.
        sidecar: Its metadata file.
        suffix: Extension kept on the temporary file (``.keras``).

    Yields:
        The :class:`PendingPair`.
    """
    path, sidecar = pathlib.Path(path), pathlib.Path(sidecar)
    _prepare(path)
    remove_stale_temps(sidecar)
    pending = PendingPair(temp_sibling(path, suffix))
    try:
        yield pending
        if pending.metadata is None:
            raise StorageError(f"no metadata given for {str(path)!r}")
        fsync(pending.tmp)
        final = {**pending.metadata, "replaces": None}
        previous = _read_json(sidecar)
        if previous is not None and path.exists():
            previous.pop("replaces", None)
            write_text(sidecar, _json({**final, "replaces": previous}))
        os.replace(pending.tmp, path)
        _fsync_dir(path.parent)
        write_text(sidecar, _json(final))
    finally:
        remove(pending.tmp)


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _read_json(path: pathlib.Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(pathlib.Path(path)) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    write_bytes(path, text.encode("utf-8"))


def replace_dir(tmp: pathlib.Path, dest: pathlib.Path) -> None:
    """Move the finished folder ``tmp`` to ``dest``, replacing an existing ``dest``.

    A rename cannot replace a non-empty folder, so the old one is first renamed aside
    and removed only once the new one is in place.
    """
    fsync(tmp)
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
    _fsync_dir(dest.parent)
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
