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

import numpy as np

import keras_cnnkit as ck


def load(args):
    if args.data_dir:
        data = ck.load_image_folder(
            args.data_dir,
            subdir="train" if str(args.data_dir).endswith((".tar.gz", ".tgz")) else None,
            max_per_class=20 if args.smoke else None,
        )
        train, val = data.split(0.1, seed=0)
        return (train.x, train.y), (val.x, val.y)
    if args.smoke:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, 96)
        return (x[:64], y[:64]), (x[64:], y[64:])
    import keras

    (x, y), (x_test, y_test) = keras.datasets.cifar10.load_data()
    return (x, y.ravel()), (x_test, y_test.ravel())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=["fast", "classic"], default="fast")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--output", default="cifar10.keras")
    parser.add_argument("--smoke", action="store_true", help="tiny data, one epoch, narrow network")
    args = parser.parse_args()

    (x, y), (x_val, y_val) = load(args)
    if args.recipe == "fast":
        recipe = ck.cifar10_fast_recipe(
            precision=args.precision,
            **({"width": 0.125, "batch_size": 32} if args.smoke else {}),
        )
    else:
        recipe = ck.cifar10_classic_recipe(precision=args.precision)
    epochs = 1 if args.smoke else args.epochs or recipe.epochs
    print(json.dumps(recipe.metadata()["hardware"], indent=2))
    recipe.fit(x, y, validation_data=(x_val, y_val), epochs=epochs)
    print(f"validation accuracy: {recipe.evaluate(x_val, y_val):.4f}")
    recipe.model.save(args.output)
    print(f"saved {args.output}")


if __name__ == "__main__":
    main()
