"""``cnnkit evaluate``: score a saved model on labelled data."""

from __future__ import annotations

import argparse
import json
import pathlib

from keras_cnnkit.cli._common import add_debug, add_no_verify, load_model


def register(subparsers) -> None:
    """Add the ``evaluate`` command.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "evaluate",
        help="score a saved model on labelled data (accuracy, top-k, per class, confusion)",
        description=(
            "Evaluate MODEL (a .keras file saved by keras_cnnkit) on DATA: an image folder "
            "(root/<class>/*) or a .npz with x and y. Prints loss, accuracy, top-k accuracy, "
            "per-class precision and recall and the confusion matrix."
        ),
    )
    p.add_argument("model", help="the .keras model (local or gs://)")
    p.add_argument("data", help="an image folder or a .npz with x and y")
    p.add_argument("--top-k", type=int, default=5, help="k of the top-k accuracy (default 5)")
    p.add_argument("--batch-size", type=int, default=256, help="prediction batch size")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--plot", metavar="PNG", help="also draw the confusion matrix (matplotlib)")
    p.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="leave out images that cannot be decoded (listed on stderr) instead of failing",
    )
    add_no_verify(p)
    add_debug(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the report."""
    from keras_cnnkit.cli._inputs import evaluate_arrays, evaluate_folder
    from keras_cnnkit.evaluation.metrics import classification_report, plot_confusion_matrix

    model, meta = load_model(args.model, not args.no_verify, compile=False)
    names = list(meta.class_names) if meta and meta.class_names else None
    if pathlib.Path(args.data).suffix == ".npz":
        probs, y = evaluate_arrays(model, args.data, args.batch_size)
    else:
        probs, y, names = evaluate_folder(model, args, names, meta)
    report = classification_report(y, probs, names, k=args.top_k)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(report.table())
    if args.plot:
        plot_confusion_matrix(report, args.plot)
        if not args.json:
            print(f"confusion matrix written to {args.plot}")
    return 0
