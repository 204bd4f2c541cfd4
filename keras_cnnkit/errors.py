"""Exception types raised by keras_cnnkit.

Every error the library raises on bad input derives from :class:`CnnkitError`, so a
caller can catch them all at once. Each also derives from the matching built-in type
(``ValueError``, ``ImportError``...) so existing ``except`` clauses keep working.
"""

from __future__ import annotations

__all__ = [
    "CnnkitError",
    "SpecError",
    "ConfigError",
    "DataError",
    "ImageDecodeError",
    "MissingDependencyError",
    "PrecisionError",
    "DistributionError",
    "StorageError",
    "IntegrityError",
]


class CnnkitError(Exception):
    """Base class of every error raised by keras_cnnkit."""


class SpecError(CnnkitError, ValueError):
    """A model specification that cannot build a working model (names the stage at fault)."""


class ConfigError(CnnkitError, ValueError):
    """A run configuration with an unknown key or a value of the wrong type (names the key)."""


class DataError(CnnkitError, ValueError):
    """Input data of the wrong shape, dtype, range or layout (names the input at fault)."""


class ImageDecodeError(DataError):
    """An image file that cannot be read or decoded (names the file and the reason)."""


class MissingDependencyError(CnnkitError, ImportError):
    """An optional dependency is missing; the message gives the ``pip install`` line."""


class PrecisionError(CnnkitError, ValueError):
    """A precision (dtype policy) that is unknown or cannot run on this machine."""


class DistributionError(CnnkitError, RuntimeError):
    """A layer or model used in a distributed setting it cannot run correctly in."""


class StorageError(CnnkitError, OSError):
    """Reading or writing a model file or a storage object failed."""


class IntegrityError(StorageError):
    """A file or object whose checksum does not match what was recorded."""
