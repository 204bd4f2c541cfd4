"""``cnnkit pack``: images (a class-folder tree, or a .npz) to TFRecord shards with a manifest."""

from __future__ import annotations

import argparse
import sys

from keras_cnnkit.cli._common import add_debug, add_gcs_arguments, gcs_options


def register(subparsers) -> None:
    """Add the ``pack`` command.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "pack",
        help="pack a folder of class folders (or a .npz) into TFRecord shards (local or gs://)",
        description=(
            "Write the images of SOURCE (a folder of class folders, or a .npz with x and y) "
            "into TFRecord shards of about --shard-size bytes under DEST (a folder or "
            "gs://bucket/prefix), with DEST/manifest.json listing the shards, their counts "
            "and checksums, the class names and the split. Files keep their encoded bytes. "
            "Bad files are skipped and listed. Run the same command again after an "
            "interruption: the pack continues where it stopped."
        ),
    )
    p.add_argument("source", help="folder of class folders, or a .npz file")
    p.add_argument("dest", help="destination folder or gs://bucket/prefix")
    p.add_argument(
        "--shard-size", default="128MB", help="target bytes per shard, e.g. 128MB (default)"
    )
    p.add_argument(
        "--validation-split",
        type=float,
        default=None,
        help="fraction of images written as the validation split (the data layer's split)",
    )
    p.add_argument(
        "--min-shards",
        type=int,
        default=1,
        help="at least this many training shards (smaller ones if needed): at least the "
        "number of processes that will train from them",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the order")
    p.add_argument(
        "--reencode",
        choices=("png", "jpeg"),
        default=None,
        help="decode and re-encode every image (default: store the file bytes as they are)",
    )
    p.add_argument(
        "--strict", action="store_true", help="stop at the first bad file instead of skipping it"
    )
    p.add_argument("--overwrite", action="store_true", help="replace a finished pack at DEST")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_gcs_arguments(p)
    add_debug(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pack, then print where the manifest is and what was skipped."""
    from keras_cnnkit.data import pack
    from keras_cnnkit.data._shards import describe

    result = pack(
        args.source,
        args.dest,
        shard_size=args.shard_size,
        min_shards=args.min_shards,
        validation_split=args.validation_split,
        seed=args.seed,
        on_error="raise" if args.strict else "skip",
        reencode=args.reencode,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        gcs=gcs_options(args) if args.dest.startswith("gs://") else None,
    )
    if result.report:
        print(result.report.summary(), file=sys.stderr)
    print(describe(result.manifest))
    print(
        f"packed {result.num_images} images ({result.bytes / 1e6:.1f} MB) in "
        f"{result.seconds:.1f} s{' (resumed)' if result.resumed else ''}"
    )
    print(f"manifest: {result.manifest_uri}")
    return 0
