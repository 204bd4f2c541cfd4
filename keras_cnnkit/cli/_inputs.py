"""Reading the inputs of ``cnnkit evaluate`` and ``cnnkit predict``: arrays, folders, images."""

from __future__ import annotations

import argparse
import pathlib
import sys

from keras_cnnkit.cli._common import input_size
from keras_cnnkit.errors import DataError, ImageDecodeError


def evaluate_arrays(model, path: str, batch_size: int):
    """Class probabilities of a model on a ``.npz`` holding ``x`` and ``y``, and the labels."""
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


def evaluate_folder(model, args: argparse.Namespace, names):
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
    height, width, channels = input_size(model)
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


def image_files(inputs) -> list[pathlib.Path]:
    """The image files named by ``inputs`` (files, and the images inside folders)."""
    from keras_cnnkit.datasets.image_folder import IMAGE_EXTENSIONS

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


def read_image(path: pathlib.Path, height, width, channels):
    """One image as a uint8 array, resized to ``(height, width)`` when both are set."""
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


def image_batches(files, height, width, channels, batch_size: int):
    """Yield ``(paths, images)`` batches of the files, read by :func:`read_image`."""
    import numpy as np

    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        images = [read_image(f, height, width, channels) for f in chunk]
        if len({i.shape for i in images}) > 1:
            raise DataError(
                "the model takes any image size but these images differ in size; predict "
                "them one at a time"
            )
        yield chunk, np.stack(images)
