"""Arguments and steps shared by several commands (model loading, Google Cloud Storage)."""

from __future__ import annotations

import argparse
import pathlib

from keras_cnnkit.errors import DataError

MiB = 1 << 20


def add_debug(parser: argparse.ArgumentParser) -> None:
    """Add ``--debug`` to a command (keeping a ``cnnkit --debug COMMAND`` given before it)."""
    # SUPPRESS: without the flag, keep what `cnnkit --debug COMMAND` already set
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )


def add_no_verify(parser: argparse.ArgumentParser) -> None:
    """Add ``--no-verify`` (load a model that has no checksum file)."""
    parser.add_argument(
        "--no-verify", action="store_true", help="load a model that has no checksum file"
    )


def load_model(path: str, verify: bool, **kwargs):
    """Load a model saved by keras_cnnkit (``DataError`` when a local file is missing).

    Args:
        path: Local path or ``gs://`` URI.
        verify: Check the sha256 against the metadata.
        **kwargs: Passed to :func:`keras_cnnkit.io.load`.

    Returns:
        ``(model, metadata)``.
    """
    from keras_cnnkit import io as ckio

    if not path.startswith("gs://") and not pathlib.Path(path).is_file():
        raise DataError(f"model file not found: {path}")
    return ckio.load(path, verify=verify, **kwargs)


def input_size(model) -> tuple[int | None, int | None, int]:
    """``(height, width, channels)`` of a model's image input (``None``: any size)."""
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    return shape[1], shape[2], shape[3]


def add_gcs_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the Google Cloud Storage options (project, timeout, deadline, chunk size)."""
    group = parser.add_argument_group(
        "Google Cloud Storage",
        "Credentials come from Application Default Credentials; STORAGE_EMULATOR_HOST "
        "points to a local server.",
    )
    group.add_argument("--project", help="Google Cloud project for billing")
    group.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per request (default 60)"
    )
    group.add_argument(
        "--deadline",
        type=float,
        default=300.0,
        help="seconds to keep retrying a failing request (default 300)",
    )
    group.add_argument(
        "--chunk-size-mib",
        type=int,
        default=16,
        help="resumable upload chunk size in MiB (default 16)",
    )


def gcs_options(args: argparse.Namespace):
    """The :class:`keras_cnnkit.io.GCSOptions` of the command line."""
    from keras_cnnkit.io import GCSOptions

    return GCSOptions(
        project=args.project,
        timeout=args.timeout,
        deadline=args.deadline,
        chunk_size=args.chunk_size_mib * MiB,
    )
