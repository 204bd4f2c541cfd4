"""``cnnkit upload`` and ``cnnkit download``: files and folders to and from ``gs://``."""

from __future__ import annotations

import argparse
import pathlib

from keras_cnnkit.cli._common import add_debug, add_gcs_arguments, gcs_options
from keras_cnnkit.errors import DataError


def register(subparsers) -> None:
    """Add the ``upload`` and ``download`` commands.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "upload",
        help="upload a file or folder to gs://, verified by crc32c",
        description=(
            "Upload a file or a folder to Google Cloud Storage. Folders get a manifest "
            "written last; existing objects are kept unless --overwrite is given."
        ),
    )
    p.add_argument("source", help="local file or folder")
    p.add_argument("uri", help="destination gs://bucket/name (ending in / to keep the file name)")
    p.add_argument("--overwrite", action="store_true", help="replace existing objects")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_gcs_arguments(p)
    add_debug(p)
    p.set_defaults(func=upload, backend=False)

    p = subparsers.add_parser(
        "download",
        help="download a gs:// object or uploaded folder, verified by crc32c",
        description=(
            "Download an object, or a folder uploaded by `cnnkit upload` (checked against "
            "its manifest), to a local path."
        ),
    )
    p.add_argument("uri", help="source gs://bucket/name")
    p.add_argument("dest", help="local destination file or folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing destination")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_gcs_arguments(p)
    add_debug(p)
    p.set_defaults(func=download, backend=False)


def upload(args: argparse.Namespace) -> int:
    """Upload and print what was sent."""
    from keras_cnnkit import io as ckio

    if not pathlib.Path(args.source).exists():
        raise DataError(f"cannot upload {args.source!r}: it does not exist")
    result = ckio.upload(
        args.source,
        args.uri,
        overwrite=args.overwrite,
        progress=not args.quiet,
        gcs=gcs_options(args),
    )
    print(
        f"uploaded {len(result.files)} file(s), {result.bytes / 1e6:.1f} MB, to {result.uri} "
        f"in {result.seconds:.1f} s ({result.mb_per_s:.1f} MB/s), crc32c verified"
    )
    return 0


def download(args: argparse.Namespace) -> int:
    """Download and print what was received."""
    from keras_cnnkit import io as ckio

    result = ckio.download(
        args.uri,
        args.dest,
        overwrite=args.overwrite,
        progress=not args.quiet,
        gcs=gcs_options(args),
    )
    print(
        f"downloaded {len(result.files)} file(s), {result.bytes / 1e6:.1f} MB, to "
        f"{result.local} in {result.seconds:.1f} s ({result.mb_per_s:.1f} MB/s), crc32c verified"
    )
    return 0
