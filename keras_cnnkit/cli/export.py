"""``cnnkit export``: a saved model as a TensorFlow SavedModel or a ``.tflite`` file."""

from __future__ import annotations

import argparse

from keras_cnnkit.cli._common import (
    add_debug,
    add_gcs_arguments,
    add_no_verify,
    gcs_options,
    load_model,
)


def register(subparsers) -> None:
    """Add the ``export`` command.

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
    p.add_argument(
        "--quantization",
        default="none",
        choices=["none", "float16", "int8"],
        help="TFLite post-training quantization: float16 weights (about half the size) or "
        "int8 weights and activations (about a quarter; needs --calibration-data)",
    )
    p.add_argument(
        "--calibration-data",
        nargs="+",
        metavar="IMAGE",
        help="image files or folders whose first 100 images calibrate int8 quantization",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_no_verify(p)
    p.add_argument(
        "--unsafe",
        action="store_true",
        help="allow models with Python code (Lambda layers); only for trusted files",
    )
    add_gcs_arguments(p)
    add_debug(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the model and print what was written."""
    from keras_cnnkit.io import export

    gcs = gcs_options(args)
    model, meta = load_model(args.model, not args.no_verify, safe_mode=not args.unsafe, gcs=gcs)
    calibration = None
    if args.calibration_data:
        from keras_cnnkit.cli._inputs import image_batches, image_files
        from keras_cnnkit.data import data_config

        files = image_files(args.calibration_data)
        config = data_config(model, meta)  # the input preprocessing the model recorded
        calibration = (images for _, images in image_batches(files, config, 32))
    written = export(
        model,
        args.output,
        args.format,
        metadata=meta,
        image_size=args.image_size,
        overwrite=args.overwrite,
        gcs=gcs,
        quantization=None if args.quantization == "none" else args.quantization,
        representative_data=calibration,
    )
    classes = f", {len(written.class_names)} classes" if written.class_names else ""
    quantized = f", {args.quantization} quantization" if args.quantization != "none" else ""
    print(f"exported {args.model} to {args.output} ({args.format}{quantized}{classes})")
    return 0
