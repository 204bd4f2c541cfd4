"""``cnnkit export``, ``cnnkit upload`` and ``cnnkit download``.

Exit codes: 0 on success, 1 when a transfer or export fails (unreachable server,
checksum mismatch, destination already present), 2 on bad input (raised as a
keras_cnnkit error and reported by :func:`keras_cnnkit.cli.main.main`).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from keras_cnnkit.errors import StorageError

MiB = 1 << 20


def register(subparsers) -> None:
    """Add the ``export``, ``upload`` and ``download`` commands.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "export",
        help="export a saved .keras model for serving (SavedModel or TFLite)",
        description=(
            "Export a model saved with keras_cnnkit.io.save as a TensorFlow SavedModel "
            "(signatures 'serving_default': uint8 images, 'serving_bytes': encoded "
            "JPEG/PNG) or a .tflite file. MODEL and OUTPUT may be gs:// URIs."
        ),
    )
    p.add_argument("model", help="the .keras model file (local or gs://)")
    p.add_argument("output", help="the SavedModel folder or .tflite file (local or gs://)")
    p.add_argument("--format", default="savedmodel", choices=["savedmodel", "tflite"])
    p.add_argument(
        "--image-size",
        nargs=2,
        type=int,
        metavar=("HEIGHT", "WIDTH"),
        help="size encoded images are resized to (only for models taking any size)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--no-verify", action="store_true", help="load a model that has no checksum file"
    )
    p.add_argument(
        "--unsafe",
        action="store_true",
        help="allow models with Python code (Lambda layers); only for trusted files",
    )
    _add_gcs_arguments(p)
    p.set_defaults(func=_export)

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
    _add_gcs_arguments(p)
    p.set_defaults(func=_upload)

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
    _add_gcs_arguments(p)
    p.set_defaults(func=_download)


def _add_gcs_arguments(parser: argparse.ArgumentParser) -> None:
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


def _gcs_options(args):
    from keras_cnnkit.io import GCSOptions

    return GCSOptions(
        project=args.project,
        timeout=args.timeout,
        deadline=args.deadline,
        chunk_size=args.chunk_size_mib * MiB,
    )


def _fail(command: str, exc: Exception) -> int:
    print(f"cnnkit {command}: error: {exc}", file=sys.stderr)
    return 1


def _export(args) -> int:
    from keras_cnnkit.io import export, load

    gcs = _gcs_options(args)
    model, meta = load(args.model, verify=not args.no_verify, safe_mode=not args.unsafe, gcs=gcs)
    try:
        written = export(
            model,
            args.output,
            args.format,
            metadata=meta,
            image_size=args.image_size,
            overwrite=args.overwrite,
            gcs=gcs,
        )
    except StorageError as exc:
        return _fail("export", exc)
    classes = f", {len(written.class_names)} classes" if written.class_names else ""
    print(f"exported {args.model} to {args.output} ({args.format}{classes})")
    return 0


def _upload(args) -> int:
    from keras_cnnkit.io import upload

    if not pathlib.Path(args.source).exists():
        raise StorageError(f"cannot upload {args.source!r}: it does not exist")
    gcs = _gcs_options(args)
    try:
        result = upload(
            args.source, args.uri, overwrite=args.overwrite, progress=not args.quiet, gcs=gcs
        )
    except StorageError as exc:
        return _fail("upload", exc)
    print(
        f"uploaded {len(result.files)} file(s), {result.bytes / 1e6:.1f} MB, to {result.uri} "
        f"in {result.seconds:.1f} s ({result.mb_per_s:.1f} MB/s), crc32c verified"
    )
    return 0


def _download(args) -> int:
    from keras_cnnkit.io import download

    gcs = _gcs_options(args)
    try:
        result = download(
            args.uri, args.dest, overwrite=args.overwrite, progress=not args.quiet, gcs=gcs
        )
    except StorageError as exc:
        return _fail("download", exc)
    print(
        f"downloaded {len(result.files)} file(s), {result.bytes / 1e6:.1f} MB, to "
        f"{result.local} in {result.seconds:.1f} s ({result.mb_per_s:.1f} MB/s), crc32c verified"
    )
    return 0
