"""Train a CIFAR-10 CNN with the classic or the fast recipe.

Data: ``keras.datasets.cifar10`` by default (downloaded once), or ``--data-dir`` for a folder
of images laid out as ``<dir>/<class>/*.jpg`` (or a ``.tar.gz`` of it), from which a seeded
validation split is held out. ``--smoke`` runs end to end in seconds on a tiny random subset.

    python examples/cifar10_cnn.py --recipe fast --epochs 12
    python examples/cifar10_cnn.py --data-dir ../shared/data/cifar10-train-jpeg.tar.gz --smoke
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import keras_cnnkit as ck

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _extras import require  # noqa: E402
from _plots import confusion_matrix, training_curves  # noqa: E402

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def load(args):
    if args.data_dir:
        data = ck.load_image_folder(
            args.data_dir,
            subdir="train" if str(args.data_dir).endswith((".tar.gz", ".tgz")) else None,
            max_per_class=args.max_per_class or (20 if args.smoke else None),
        )
        train, val = data.split(0.1, seed=0)
        return (train.x, train.y), (val.x, val.y), list(data.class_names)
    if args.smoke:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, 96)
        return (x[:64], y[:64]), (x[64:], y[64:]), CLASSES
    import keras

    (x, y), (x_test, y_test) = keras.datasets.cifar10.load_data()
    return (x, y.ravel()), (x_test, y_test.ravel()), CLASSES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=["fast", "classic"], default="fast")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--output", default="cifar10.keras")
    parser.add_argument("--max-per-class", type=int, default=None, help="cap for --data-dir")
    parser.add_argument("--plot", default=None, help="write the training curves to this PNG")
    parser.add_argument("--confusion", default=None, help="write a confusion matrix PNG")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny data, two epochs, narrow network"
    )
    args = parser.parse_args()
    if args.plot or args.confusion:
        require("matplotlib", "plot", "--plot and --confusion")

    (x, y), (x_val, y_val), class_names = load(args)
    if args.recipe == "fast":
        recipe = ck.cifar10_fast_recipe(
            precision=args.precision,
            **({"width": 0.125, "batch_size": 32} if args.smoke else {}),
        )
    else:
        recipe = ck.cifar10_classic_recipe(precision=args.precision)
    epochs = args.epochs or (2 if args.smoke else recipe.epochs)
    print(json.dumps(recipe.metadata()["hardware"], indent=2))
    history = recipe.fit(x, y, validation_data=(x_val, y_val), epochs=epochs)
    if args.plot:
        curves = getattr(history, "history", history)
        print(f"wrote {training_curves(curves, args.plot, f'CIFAR-10, {args.recipe} recipe')}")
    predicted = recipe.predict(x_val).argmax(-1)
    print(f"validation accuracy: {np.mean(predicted == y_val):.4f}")
    if args.confusion:
        print(f"wrote {confusion_matrix(y_val, predicted, class_names, args.confusion)}")
    recipe.model.save(args.output)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
