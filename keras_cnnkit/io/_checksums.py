"""Streaming checksums: crc32c computed while data is read or written, and progress."""

from __future__ import annotations

import base64

from keras_cnnkit._optional import require
from keras_cnnkit.errors import StorageError
from keras_cnnkit.io._progress import ProgressCallback


def _crc32c():
    return require("google_crc32c", extra="gcs").Checksum()


def _b64(checksum) -> str:
    return base64.b64encode(checksum.digest()).decode("ascii")


class _HashingReader:
    """A file wrapper computing crc32c over the bytes read, in order, once.

    Resumable uploads may seek back to resend a chunk: bytes before the hashed
    high-water mark are not hashed again.
    """

    def __init__(self, raw, total: int, callback: ProgressCallback | None):
        self.raw = raw
        self.total = total
        self.callback = callback
        self.checksum = _crc32c()
        self.hashed = 0

    def read(self, size: int = -1) -> bytes:
        pos = self.raw.tell()
        data = self.raw.read(size)
        end = pos + len(data)
        if pos > self.hashed:
            raise StorageError("upload stream skipped data; cannot verify its checksum")
        if end > self.hashed:
            self.checksum.update(data[self.hashed - pos :] if pos < self.hashed else data)
            self.hashed = end
            if self.callback is not None:
                self.callback(end, self.total)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


class _HashingWriter:
    """A file wrapper computing crc32c and size over the bytes written."""

    def __init__(self, raw, total: int, callback: ProgressCallback | None):
        self.raw = raw
        self.total = total
        self.callback = callback
        self.checksum = _crc32c()
        self.size = 0

    def write(self, data) -> int:
        self.raw.write(data)
        self.checksum.update(bytes(data))
        self.size += len(data)
        if self.callback is not None:
            self.callback(self.size, self.total)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


def _held_back(callback, size: int):
    """Report progress short of 100 % (the caller reports 100 % once the data is checked)."""
    if callback is None:
        return None
    return lambda done, total: callback(min(done, max(size - 1, 0)), total)
