"""The Google Cloud Storage client: creation, retries, and errors in keras_cnnkit's words."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from keras_cnnkit._optional import require
from keras_cnnkit.errors import DataError, IntegrityError, StorageError

if TYPE_CHECKING:  # pragma: no cover
    from keras_cnnkit.io.gcs import GCSOptions

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


def parse_uri(uri: str) -> tuple[str, str]:
    """Split ``gs://bucket/name`` into ``(bucket, name)``.

    Args:
        uri: A ``gs://`` URI.

    Returns:
        The bucket and the object name or prefix (possibly empty).

    Raises:
        DataError: If ``uri`` is not a valid ``gs://`` URI.

    Example:
        >>> parse_uri("gs://my-bucket/models/m.keras")
        ('my-bucket', 'models/m.keras')
    """
    if not isinstance(uri, str) or not uri.startswith("gs://"):
        raise DataError(f"expected a gs://bucket/path URI, got {uri!r}")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not _BUCKET_RE.match(bucket):
        raise DataError(f"{uri!r} does not name a valid bucket (got bucket {bucket!r})")
    if "//" in name or name.startswith("/"):
        raise DataError(f"{uri!r} has an empty path segment")
    return bucket, name


@contextlib.contextmanager
def _client(opts: GCSOptions) -> Iterator[Any]:
    if opts.client is not None:
        yield opts.client
        return
    storage = require("google.cloud.storage", extra="gcs")
    auth_exceptions = require("google.auth.exceptions", extra="gcs")
    try:
        client = storage.Client(project=opts.project, credentials=opts.credentials)
    except auth_exceptions.DefaultCredentialsError:
        raise StorageError(
            "no Google Cloud credentials found: run `gcloud auth application-default login`, "
            "set GOOGLE_APPLICATION_CREDENTIALS, or pass GCSOptions(credentials=...) or "
            "GCSOptions(client=...)"
        ) from None
    except OSError as exc:  # e.g. a missing or unreadable credentials file
        raise StorageError(f"cannot create a storage client: {_redact(str(exc))}") from None
    try:
        yield client
    finally:
        client.close()


def _retry(opts: GCSOptions):
    retry_mod = require("google.cloud.storage.retry", extra="gcs")
    return retry_mod.DEFAULT_RETRY.with_timeout(float(opts.deadline))


def _redact(text: str) -> str:
    """Remove anything credential-like from a message: tokens, signatures, query strings."""
    text = re.sub(r"(?i)(bearer|basic)\s+[^\s,'\"]+", r"\1 <redacted>", text)
    text = re.sub(
        r"(?i)(access_token|token|signature|key)([\"']?\s*[:=]\s*[\"']?)[^\s,'\"&]+",
        r"\1\2<redacted>",
        text,
    )
    return re.sub(r"\?[^\s'\"]+", "?<query>", text)


def _check_bucket(client, opts: GCSOptions, bucket_name: str, uri: str) -> None:
    """Raise a clear error if the bucket of ``uri`` does not exist or is not visible."""
    exceptions = require("google.api_core.exceptions", extra="gcs")
    try:
        found = client.lookup_bucket(bucket_name, timeout=opts.timeout, retry=_retry(opts))
    except exceptions.Forbidden:
        return  # cannot tell: the caller's own error stands
    if found is None:
        raise StorageError(f"bucket {bucket_name!r} does not exist (for {uri!r})")


@contextlib.contextmanager
def _errors(action: str, uri: str, client, opts: GCSOptions) -> Iterator[None]:
    """Translate google-cloud-storage and transport errors into keras_cnnkit errors."""
    exceptions = require("google.api_core.exceptions", extra="gcs")
    storage_exceptions = require("google.cloud.storage.exceptions", extra="gcs")
    auth_exceptions = require("google.auth.exceptions", extra="gcs")
    requests_exceptions = require("requests.exceptions", extra="gcs")
    try:
        yield
    except (StorageError, DataError):
        raise
    except storage_exceptions.DataCorruption:
        raise IntegrityError(
            f"{action} {uri!r}: the data received does not match the checksum the server "
            "reports (corrupted in transit or at rest); nothing was kept"
        ) from None
    except exceptions.NotFound as exc:
        bucket_name, _ = parse_uri(uri)
        with contextlib.suppress(exceptions.GoogleAPIError, requests_exceptions.RequestException):
            _check_bucket(client, opts, bucket_name, uri)
        raise StorageError(f"{action} {uri!r}: not found ({_redact(str(exc))})") from None
    except exceptions.PreconditionFailed:
        raise StorageError(
            f"{action} {uri!r}: the object already exists or was changed by someone else "
            "meanwhile; pass overwrite=True to replace it"
        ) from None
    except (exceptions.Forbidden, exceptions.Unauthorized) as exc:
        raise StorageError(
            f"{action} {uri!r}: permission denied ({exc.code}); check that the credentials in "
            "use may access this bucket"
        ) from None
    except exceptions.RetryError as exc:
        cause = exc.cause if exc.cause is not None else exc
        raise StorageError(
            f"{action} {uri!r} failed: still failing after retrying for {opts.deadline:g} s "
            f"(last error: {type(cause).__name__}: {_redact(str(cause))[:300]}); the server "
            "may be unreachable. Raise GCSOptions(deadline=...) to wait longer"
        ) from None
    except auth_exceptions.GoogleAuthError as exc:
        raise StorageError(
            f"{action} {uri!r}: authentication failed ({type(exc).__name__}); check the "
            "credentials (Application Default Credentials or GCSOptions(credentials=...))"
        ) from None
    except requests_exceptions.RequestException as exc:
        raise StorageError(
            f"{action} {uri!r} failed: cannot reach the storage server "
            f"({type(exc).__name__}: {_redact(str(exc))[:300]})"
        ) from None
    except exceptions.GoogleAPICallError as exc:
        raise StorageError(f"{action} {uri!r} failed: {_redact(str(exc))[:500]}") from None
    except (storage_exceptions.InvalidResponse, ValueError) as exc:
        raise StorageError(f"{action} {uri!r} failed: {_redact(str(exc))[:500]}") from None
