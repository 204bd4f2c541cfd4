"""Transfer learning with VGG16: a new classifier head on a frozen ImageNet backbone.

Data: a folder of images laid out as ``<dir>/<class>/<image>`` (``--data-dir``). The backbone
takes raw ``uint8`` pixels (its preprocessing is inside the model). Writes the training
curves and a confusion matrix on the validation split as PNGs.

``--smoke`` runs offline on random 32x32 images with ``weights=None`` (ImageNet weights
need a download that ``--smoke`` does not make).

    python examples/transfer_vgg16.py --data-dir path/to/images --epochs 5
    python examples/transfer_vgg16.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import keras_cnnkit as ck

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _extras import require  # noqa: E402
from _plots import confusion_matrix, training_curves  # noqa: E402


def load(args):
    if args.smoke:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8)
        y = np.arange(48) % 3
        x[np.arange(48), :, :, y] = 255  # one bright channel per class: learnable in one epoch
        return (x[:36], y[:36]), (x[36:], y[36:]), ["red", "green", "blue"]
    size = (args.image_size, args.image_size)
    data = ck.load_image_folder(args.data_dir, image_size=size)
    train, val = data.split(0.2, seed=0)
    return (train.x, train.y), (val.x, val.y), list(data.class_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder of <class>/<image> files")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--weights", default="imagenet", help="'imagenet', a file, or 'none'")
    parser.add_argument("--output", default="transfer-output", help="folder for model and PNGs")
    parser.add_argument("--smoke", action="store_true", help="random images, weights=None")
    args = parser.parse_args()
    if not args.smoke and not args.data_dir:
        parser.error("--data-dir is required (or --smoke)")
    require("matplotlib", "plot", "drawing the training curves and the confusion matrix")

    (x, y), (x_val, y_val), class_names = load(args)
    weights = None if args.smoke or args.weights == "none" else args.weights
    output = Path(tempfile.mkdtemp(prefix="transfer-") if args.smoke else args.output)
    model = ck.build_classifier(
        "vgg16", len(class_names), input_shape=x.shape[1:], weights=weights, dropout=0.2
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x,
        y,
        validation_data=(x_val, y_val),
        epochs=2 if args.smoke else args.epochs,
        batch_size=12 if args.smoke else args.batch_size,
        verbose=2,
    )
    predicted = model.predict(x_val, verbose=0).argmax(-1)
    print(f"validation accuracy: {np.mean(predicted == y_val):.4f}")
    print(f"wrote {training_curves(history.history, output / 'curves.png', 'VGG16 transfer')}")
    path = confusion_matrix(y_val, predicted, class_names, output / "confusion.png")
    print(f"wrote {path}")
    model.save(output / "vgg16_transfer.keras")


if __name__ == "__main__":
    main()
