"""Reading the inputs of ``cnnkit evaluate`` and ``cnnkit predict`` through the data layer.

Images are listed, decoded and resized by the data layer with the input preprocessing
the model recorded, so a file gives the model the same pixels here as in training and in
the exported ``serving_bytes`` signature.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from keras_cnnkit.errors import DataError


def evaluate_arrays(model, path: str, batch_size: int):
    """Class probabilities of a model on a ``.npz`` holding ``x`` and ``y``, and the labels."""
    import numpy as np

    from keras_cnnkit.data._npz import read_npz

    x, y, _ = read_npz(path, "data")
    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float64")
    return probs, y


def evaluate_folder(model, args: argparse.Namespace, names, metadata=None):
    """Stream a folder of class folders through the pipeline, batch by batch.

    The images are read as the model recorded (:func:`keras_cnnkit.data.data_config` of
    the model and its ``metadata``); the class folders must be the model's classes.
    """
    import numpy as np

    from keras_cnnkit.data import data_config, from_directory
    from keras_cnnkit.data._listing import class_folders

    root = pathlib.Path(args.data)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}")
    folders = class_folders(root, None, "evaluate")
    if names and folders != sorted(names):
        raise DataError(
            f"the class folders of {root} {folders} differ from the model's classes {names}"
        )
    config = data_config(model, metadata)
    ds = from_directory(
        root,
        data_config=config,
        class_names=names or folders,  # labels in the model's output order
        batch_size=args.batch_size if config.image_size else 1,
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


def image_files(inputs) -> list[str]:
    """The image files named by ``inputs`` (files, and the images inside folders)."""
    from keras_cnnkit.data import expand_inputs

    return expand_inputs(inputs, "predict")


def image_batches(files, config, batch_size: int, *, skip_bad_files: bool = False):
    """Yield ``(paths, images)`` batches of the files as the model's input.

    Args:
        files: Image files.
        config: The model's :class:`~keras_cnnkit.data.DataConfig`.
        batch_size: Images per batch (1 when the model takes any size).
        skip_bad_files: Leave out (and list on stderr) files that cannot be read,
            instead of raising for the first one.

    Yields:
        ``(paths, images)`` of the readable files, in order.

    Raises:
        ImageDecodeError: For a bad file, unless ``skip_bad_files``.
        DataError: If no file could be read.
    """
    import numpy as np

    from keras_cnnkit.data import read_images

    on_error = "skip" if skip_bad_files else "raise"
    step = batch_size if config.image_size else 1
    done = 0
    for start in range(0, len(files), step):
        images, kept, report = read_images(files[start : start + step], config, on_error=on_error)
        for item in report:
            print(f"skipped {item.path}: {item.reason}", file=sys.stderr)
        if kept:
            done += len(kept)
            yield kept, np.stack(images)
    if not done:
        raise DataError(f"none of the {len(files)} image file(s) could be read")
