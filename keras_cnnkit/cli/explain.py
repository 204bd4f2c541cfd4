"""``cnnkit explain``: Grad-CAM overlays showing where a model finds each image's class."""

from __future__ import annotations

import argparse
import pathlib

from keras_cnnkit.cli._common import add_debug, add_no_verify, load_model
from keras_cnnkit.errors import DataError


def register(subparsers) -> None:
    """Add the ``explain`` command.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "explain",
        help="Grad-CAM overlays of images (files or folders): where the model sees the class",
        description=(
            "Read each image as the model was trained to (its recorded input size and "
            "preprocessing), compute its class activation map (Grad-CAM) on the last "
            "convolutional feature map, and write the map blended over the image as "
            "OUT/<image name>.gradcam.png (red: strongest evidence)."
        ),
    )
    p.add_argument("model", help="the .keras model (local or gs://)")
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER", help="images or folders")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG overlays")
    p.add_argument(
        "--class",
        dest="class_name",
        metavar="CLASS",
        help="explain this class (a class name or index) instead of the predicted one",
    )
    p.add_argument("--layer", help="feature-map layer (default: the last convolutional one)")
    p.add_argument(
        "--alpha", type=float, default=0.45, help="weight of the map colours (default 0.45)"
    )
    p.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="leave out images that cannot be decoded (listed on stderr) and explain the others",
    )
    add_no_verify(p)
    add_debug(p)
    p.set_defaults(func=run)


def _class_index(value: str | None, names: list[str] | None, num_classes: int) -> int | None:
    if value is None:
        return None
    if names and value in names:
        return names.index(value)
    if value.lstrip("-").isdigit() and 0 <= int(value) < num_classes:
        return int(value)
    choices = f"one of {names} or " if names else ""
    raise DataError(f"--class {value!r} is not {choices}an index in 0..{num_classes - 1}")


def _out_names(files: list[str]) -> list[str]:
    """``<stem>.gradcam.png`` per file; a repeated stem gets its position too."""
    stems = [pathlib.Path(f).stem for f in files]
    return [
        f"{stem}.gradcam.png" if stems.count(stem) == 1 else f"{stem}-{i}.gradcam.png"
        for i, stem in enumerate(stems)
    ]


def run(args: argparse.Namespace) -> int:
    """Write one overlay per image and print where each went."""
    from keras_cnnkit.cli._inputs import image_batches, image_files
    from keras_cnnkit.data import data_config
    from keras_cnnkit.evaluation import grad_cam

    if not 0.0 <= args.alpha <= 1.0:
        raise DataError(f"--alpha must be between 0 and 1, got {args.alpha}")
    model, meta = load_model(args.model, not args.no_verify, compile=False)
    names = list(meta.class_names) if meta and meta.class_names else None
    class_index = _class_index(args.class_name, names, int(model.output_shape[-1]))
    files = image_files(args.inputs)
    out_names = dict(zip(files, _out_names(files)))
    out = pathlib.Path(args.out)
    config = data_config(model, meta)  # the input preprocessing the model recorded
    for chunk, images in image_batches(files, config, 16, skip_bad_files=args.skip_bad_files):
        cam = grad_cam(model, images, class_index, layer=args.layer, alpha=args.alpha)
        written = cam.save([out / out_names[path] for path in chunk])
        for path, target, k, score in zip(chunk, written, cam.class_index, cam.scores):
            label = names[k] if names and k < len(names) else str(k)
            print(f"{path} -> {target}  class {label}  logit {float(score):.4f}")
    return 0
