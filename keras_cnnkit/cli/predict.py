"""``cnnkit predict``: the top-k classes of images, with scores."""

from __future__ import annotations

import argparse
import json

from keras_cnnkit.cli._common import add_debug, add_no_verify, load_model


def register(subparsers) -> None:
    """Add the ``predict`` command.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "predict",
        help="top-k classes of images (files or folders), with scores",
        description=(
            "Print the top-k classes of each image, named from the model's metadata, as a "
            "table or as JSON lines."
        ),
    )
    p.add_argument("model", help="the .keras model (local or gs://)")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="images or folders")
    p.add_argument("--top-k", type=int, default=3, help="classes per image (default 3)")
    p.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    p.add_argument("--batch-size", type=int, default=64, help="prediction batch size")
    p.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="leave out images that cannot be decoded (listed on stderr) and print the others",
    )
    add_no_verify(p)
    add_debug(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Predict and print one line per image."""
    import numpy as np

    from keras_cnnkit.cli._inputs import image_batches, image_files
    from keras_cnnkit.data import data_config

    model, meta = load_model(args.model, not args.no_verify, compile=False)
    config = data_config(model, meta)  # the input preprocessing the model recorded
    files = image_files(args.inputs)
    names = list(meta.class_names) if meta and meta.class_names else None
    k = max(1, args.top_k)
    batches = image_batches(files, config, args.batch_size, skip_bad_files=args.skip_bad_files)
    for chunk, images in batches:
        probs = np.asarray(model.predict(images, verbose=0), dtype="float64")
        if names is None:
            names = [str(i) for i in range(probs.shape[1])]
        for path, row in zip(chunk, probs):
            top = np.argsort(-row, kind="stable")[: min(k, len(row))]
            picks = [{"class": names[i], "score": round(float(row[i]), 6)} for i in top]
            if args.jsonl:
                print(json.dumps({"file": str(path), "top": picks}))
            else:
                text = "  ".join(f"{p['class']} {p['score']:.4f}" for p in picks)
                print(f"{path}  {text}")
    return 0
