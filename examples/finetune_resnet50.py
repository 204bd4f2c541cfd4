"""Fine-tune ResNet50 in two phases: train the new head, then unfreeze the last stages.

Data: a folder of images laid out as ``<dir>/<class>/<image>`` (``--data-dir``), read by a
tf.data pipeline (:func:`keras_cnnkit.data.from_directory`) with flip and translate
augmentation. BatchNorm stays in inference mode throughout; the unfrozen stages learn at
``--lr-mult`` times the head's rate. Writes the training curves of both phases.

``--smoke`` runs offline on a few generated images with ``weights=None``.

    python examples/finetune_resnet50.py --data-dir path/to/images --last-n-stages 2
    python examples/finetune_resnet50.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import keras_cnnkit as ck
from keras_cnnkit.data import from_directory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _extras import require  # noqa: E402
from _plots import training_curves  # noqa: E402
from preprocessing_pipeline import make_folder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder of <class>/<image> files")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--head-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5, help="epochs with stages unfrozen")
    parser.add_argument("--last-n-stages", type=int, default=2)
    parser.add_argument("--base-lr", type=float, default=1e-4)
    parser.add_argument("--lr-mult", type=float, default=0.1)
    parser.add_argument("--weights", default="imagenet", help="'imagenet', a file, or 'none'")
    parser.add_argument("--output", default="finetune-output", help="folder for model and PNG")
    parser.add_argument("--smoke", action="store_true", help="generated images, weights=None")
    args = parser.parse_args()
    require("matplotlib", "plot", "drawing the training curves")

    if args.smoke:
        root = make_folder(Path(tempfile.mkdtemp(prefix="finetune-data-")))
        output = Path(tempfile.mkdtemp(prefix="finetune-"))
        size, batch, head_epochs, epochs, weights = 32, 4, 1, 1, None
    elif args.data_dir:
        root, output, size, batch = (
            Path(args.data_dir),
            Path(args.output),
            args.image_size,
            args.batch_size,
        )
        head_epochs, epochs = args.head_epochs, args.epochs
        weights = None if args.weights == "none" else args.weights
    else:
        parser.error("--data-dir is required (or --smoke)")

    train, val = from_directory(
        root,
        image_size=(size, size),
        augment={"flip": True, "translate": 0.1},
        batch_size=batch,
        seed=0,
        validation_split=0.2,
        subset="both",
        on_error="skip",
    )
    model = ck.build_classifier(
        "resnet50", len(train.class_names), input_shape=(size, size, 3), weights=weights
    )
    histories = ck.fine_tune(
        model,
        train,
        val,
        head_epochs=head_epochs,
        epochs=epochs,
        base_lr=args.base_lr,
        lr_mult=args.lr_mult,
        last_n_stages=args.last_n_stages,
        verbose=2,
    )
    curves = {}
    for phase in (histories.head, histories.full):
        for key, values in (phase.history if phase else {}).items():
            curves.setdefault(key, []).extend(values)
    print(f"wrote {training_curves(curves, output / 'curves.png', 'ResNet50 fine-tuning')}")
    model.save(output / "resnet50_finetuned.keras")
    print(f"saved {output / 'resnet50_finetuned.keras'}")


if __name__ == "__main__":
    main()
