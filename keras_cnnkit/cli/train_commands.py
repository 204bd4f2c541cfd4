"""``cnnkit train``, ``cnnkit evaluate`` and ``cnnkit predict``.

Exit codes: 0 on success, 2 on a user's mistake (a wrong configuration key or value,
missing data or model file), 1 when the work itself fails (a file that cannot be
written or read back, an error inside training). Tracebacks are shown only with
``--debug``.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys
import traceback

from keras_cnnkit.datasets.image_folder import IMAGE_EXTENSIONS
from keras_cnnkit.errors import CnnkitError, DataError, ImageDecodeError, StorageError


def register(subparsers) -> None:
    """Add the ``train``, ``evaluate`` and ``predict`` commands.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "train",
        help="train a model from a TOML configuration (resumes a killed run)",
        description=(
            "Train as CONFIG (a TOML file) says and write the final and best models, the "
            "history, the resolved configuration and the training curves to output.dir. "
            "Running the same command again after an interruption resumes the run."
        ),
    )
    p.add_argument("config", help="the run configuration (.toml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a configuration value (repeatable), e.g. --set training.epochs=3",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress lines")
    _add_debug(p)
    p.set_defaults(func=_guard(_train))

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
    p.add_argument(
        "--no-verify", action="store_true", help="load a model that has no checksum file"
    )
    _add_debug(p)
    p.set_defaults(func=_guard(_evaluate))

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
        "--no-verify", action="store_true", help="load a model that has no checksum file"
    )
    _add_debug(p)
    p.set_defaults(func=_guard(_predict))


def _add_debug(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: without the flag, keep what `cnnkit --debug COMMAND` already set
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error",
    )


def _guard(func):
    """Map errors to exit codes: 2 for a user's mistake, 1 for a failure."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        command = getattr(args, "command", None) or func.__name__.strip("_")
        try:
            return func(args)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, with the traceback on --debug
            if getattr(args, "debug", False):
                traceback.print_exc()
            usage = isinstance(exc, CnnkitError) and not isinstance(exc, StorageError)
            text = str(exc) if isinstance(exc, CnnkitError) else f"{type(exc).__name__}: {exc}"
            print(f"cnnkit {command}: error: {text}", file=sys.stderr)
            return 2 if usage else 1

    return run


def _train(args: argparse.Namespace) -> int:
    from keras_cnnkit.training.run import train

    result = train(args.config, args.overrides, verbose=0 if args.quiet else 2)
    print(result.summary())
    return 0


def _load_model(path: str, verify: bool):
    from keras_cnnkit import io as ckio

    if not path.startswith("gs://") and not pathlib.Path(path).is_file():
        raise DataError(f"model file not found: {path}")
    return ckio.load(path, verify=verify, compile=False)


def _input_size(model) -> tuple[int | None, int | None, int]:
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    return shape[1], shape[2], shape[3]


def _evaluate(args: argparse.Namespace) -> int:
    from keras_cnnkit.evaluation.metrics import classification_report, plot_confusion_matrix

    model, meta = _load_model(args.model, not args.no_verify)
    names = list(meta.class_names) if meta and meta.class_names else None
    if pathlib.Path(args.data).suffix == ".npz":
        probs, y = _evaluate_arrays(model, args.data, args.batch_size)
    else:
        probs, y, names = _evaluate_folder(model, args, names)
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


def _evaluate_arrays(model, path: str, batch_size: int):
    import numpy as np

    p = pathlib.Path(path)
    if not p.is_file():
        raise DataError(f"data file not found: {p}")
    with np.load(p, allow_pickle=False) as f:
        if "x" not in f.files or "y" not in f.files:
            raise DataError(f"{p} must hold arrays 'x' and 'y', found {sorted(f.files)}")
        x, y = f["x"], f["y"].reshape(-1)
    x = x[..., None] if x.ndim == 3 else x
    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float64")
    return probs, y


def _evaluate_folder(model, args: argparse.Namespace, names):
    """Stream a folder of class folders through the preprocessing pipeline, batch by batch."""
    import numpy as np

    from keras_cnnkit.preprocessing import from_directory

    root = pathlib.Path(args.data)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    folders = sorted(d.name for d in root.iterdir() if d.is_dir())
    if names and folders != sorted(names):
        raise DataError(
            f"the class folders of {root} {folders} differ from the model's classes {names}"
        )
    height, width, channels = _input_size(model)
    ds = from_directory(
        root,
        class_names=names or folders,  # labels in the model's output order
        image_size=(height, width) if height and width else None,
        color_mode="grayscale" if channels == 1 else "rgb",
        batch_size=args.batch_size if height and width else 1,
        shuffle=False,
        on_error="skip" if args.skip_bad_files else "raise",
    )
    probs, labels = [], []
    for images, y in ds:
        probs.append(np.asarray(model.predict_on_batch(images), dtype="float64"))
        labels.append(np.asarray(y))
    for item in ds.report:
        print(f"skipped {item.path}: {item.reason}", file=sys.stderr)
    if not probs:
        raise DataError(f"no image of {root} could be evaluated")
    return np.concatenate(probs), np.concatenate(labels), list(ds.class_names)


def _image_files(inputs) -> list[pathlib.Path]:
    files = []
    for item in inputs:
        p = pathlib.Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
            )
            if not found:
                raise DataError(f"folder {p} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"image or folder not found: {p}")
    return files


def _read_image(path: pathlib.Path, height, width, channels):
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if height and width and img.size != (width, height):
                img = img.resize((width, height), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise ImageDecodeError(f"cannot decode image {path}: {exc}") from exc
    return arr[..., None] if arr.ndim == 2 else arr


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    model, meta = _load_model(args.model, not args.no_verify)
    height, width, channels = _input_size(model)
    files = _image_files(args.inputs)
    names = list(meta.class_names) if meta and meta.class_names else None
    k = max(1, args.top_k)
    for start in range(0, len(files), args.batch_size):
        chunk = files[start : start + args.batch_size]
        images = [_read_image(f, height, width, channels) for f in chunk]
        if len({i.shape for i in images}) > 1:
            raise DataError(
                "the model takes any image size but these images differ in size; predict "
                "them one at a time"
            )
        probs = np.asarray(model.predict(np.stack(images), verbose=0), dtype="float64")
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
