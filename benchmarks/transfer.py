"""Transfer learning on real images: a pretrained backbone against the same network from scratch.

1. Pretrain a keras.applications backbone (MobileNetV2, alpha 0.35, run at 64x64 on
   the 32x32 images resized inside the model) on five CIFAR-10 classes (source task).
2. Save its weights with ``save_backbone_weights``.
3. Target task: the five other classes with only 100 training images per class.
   ``build_classifier(weights=<saved file>)`` + ``fine_tune`` (head first, then the whole
   backbone with discriminative learning rates and BatchNorm in inference mode), against
   the same network built with ``weights=None`` and trained on the same 500 images for the
   same number of epochs.

Both are evaluated on the same held-out images of the target classes (a seeded split of
the training JPEGs, never trained on). Wall times are measured on this machine.

Data: ``../shared/data/cifar10-train-jpeg.tar.gz``, extracted once into
``$CNNKIT_BENCH_CACHE`` (default ``/tmp/cnnkit-bench-cache``), outside the repository.

Run: ``python benchmarks/transfer.py`` (about 10 minutes on 2 CPU cores; ``--help`` for sizes).
Writes ``benchmarks/results/transfer.json`` and ``transfer.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tarfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from keras_cnnkit.backbones import backbone_model, build_classifier, save_backbone_weights  # noqa: E402
from keras_cnnkit.finetune import fine_tune  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent
RESULTS = ROOT / "results"
TARBALL = ROOT.parents[1] / "shared" / "data" / "cifar10-train-jpeg.tar.gz"
CACHE = pathlib.Path(os.environ.get("CNNKIT_BENCH_CACHE", "/tmp/cnnkit-bench-cache"))
SOURCE = ("airplane", "automobile", "bird", "cat", "deer")
TARGET = ("dog", "frog", "horse", "ship", "truck")


def cifar_folder() -> pathlib.Path:
    """Extract the shared tarball once into the cache; return ``train/``."""
    root = CACHE / "cifar10-jpeg"
    done = root / ".extracted"
    if not done.exists():
        if not TARBALL.is_file():
            sys.exit(f"CIFAR-10 tarball not found at {TARBALL}")
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(TARBALL) as tar:
            tar.extractall(root, filter="data")
        done.touch()
    return root / "train"


def load(folder: pathlib.Path, classes, per_class: int, offset: int, seed: int):
    """Decode ``per_class`` JPEGs of each class, from ``offset`` in a seeded file order."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label, name in enumerate(classes):
        files = sorted((folder / name).glob("*.jpg"))
        order = rng.permutation(len(files))[offset : offset + per_class]
        for i in order:
            with Image.open(files[i]) as img:
                xs.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int32)


def dataset(x, y, batch: int, train: bool, seed: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if train:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda a, b: (tf.image.random_flip_left_right(a, seed=seed), b))
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def network(args, weights, **kwargs) -> keras.Model:
    """MobileNetV2 at ``args.image_size``; BatchNorm momentum 0.9 where it trains.

    keras.applications' MobileNetV2 uses momentum 0.999, too slow for the moving
    statistics to settle in the few hundred steps of these runs (they would stay
    near their initial values and make inference-mode accuracy meaningless).
    """
    model = build_classifier(
        "mobilenetv2",
        5,
        input_shape=(32, 32, 3),
        image_size=(args.image_size, args.image_size),
        weights=weights,
        dropout=0.2,
        backbone_kwargs={"alpha": args.alpha},
        **kwargs,
    )
    for layer in backbone_model(model).layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-per-class", type=int, default=2000)
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--train-per-class", type=int, default=100)
    parser.add_argument("--val-per-class", type=int, default=200)
    parser.add_argument("--head-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=9, help="fine-tuning epochs after the head")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)

    folder = cifar_folder()
    t0 = time.perf_counter()
    x_src, y_src = load(folder, SOURCE, args.pretrain_per_class, 0, args.seed)
    x_tr, y_tr = load(folder, TARGET, args.train_per_class, 0, args.seed)
    # Validation images come after the training ones in the same seeded order: disjoint.
    x_val, y_val = load(folder, TARGET, args.val_per_class, args.train_per_class, args.seed)
    load_s = time.perf_counter() - t0
    print(f"decoded {len(x_src) + len(x_tr) + len(x_val)} JPEGs in {load_s:.0f} s", flush=True)
    val = dataset(x_val, y_val, 250, False, args.seed)

    # 1-2. Source task: train every layer, BatchNorm in training mode, then save the backbone.
    keras.utils.set_random_seed(args.seed)
    source = network(args, None, freeze_backbone=False, train_batchnorm=True)
    source.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    t0 = time.perf_counter()
    source.fit(dataset(x_src, y_src, 64, True, args.seed), epochs=args.pretrain_epochs, verbose=2)
    pretrain_s = time.perf_counter() - t0
    weights = save_backbone_weights(source, CACHE / "transfer" / "mobilenetv2_source.weights.h5")
    print(f"pretrained in {pretrain_s:.0f} s, saved {weights}", flush=True)

    train = dataset(x_tr, y_tr, 32, True, args.seed)
    total_epochs = args.head_epochs + args.epochs

    # 3a. Transfer: build from the saved file, fine-tune in two phases.
    keras.utils.set_random_seed(args.seed)
    t0 = time.perf_counter()
    tuned = network(args, weights)
    histories = fine_tune(
        tuned,
        train,
        val,
        head_epochs=args.head_epochs,
        epochs=args.epochs,
        head_lr=1e-3,
        base_lr=5e-4,
        lr_mult=0.1,
        verbose=2,
    )
    transfer_s = time.perf_counter() - t0
    transfer_curve = histories.head.history["val_accuracy"] + histories.full.history["val_accuracy"]

    # 3b. Scratch: the same network, random weights, same images and epochs.
    keras.utils.set_random_seed(args.seed)
    t0 = time.perf_counter()
    scratch = network(args, None, freeze_backbone=False, train_batchnorm=True)
    scratch.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    hist = scratch.fit(train, validation_data=val, epochs=total_epochs, verbose=2)
    scratch_s = time.perf_counter() - t0
    scratch_curve = hist.history["val_accuracy"]

    data = {
        "setup": {
            "backbone": f"keras.applications.MobileNetV2(alpha={args.alpha})",
            "input": f"32x32 CIFAR-10 JPEGs, resized to {args.image_size} inside the model",
            "source_classes": SOURCE,
            "target_classes": TARGET,
            "pretrain_images": int(len(x_src)),
            "pretrain_epochs": args.pretrain_epochs,
            "train_images": int(len(x_tr)),
            "val_images": int(len(x_val)),
            "epochs": total_epochs,
            "head_epochs": args.head_epochs,
            "seed": args.seed,
        },
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "load_average": os.getloadavg(),
        },
        "pretrain_s": pretrain_s,
        "transfer": {
            "final_val_accuracy": transfer_curve[-1],
            "best_val_accuracy": max(transfer_curve),
            "wall_s": transfer_s,
            "val_accuracy_per_epoch": transfer_curve,
        },
        "scratch": {
            "final_val_accuracy": scratch_curve[-1],
            "best_val_accuracy": max(scratch_curve),
            "wall_s": scratch_s,
            "val_accuracy_per_epoch": scratch_curve,
        },
    }
    t, s = data["transfer"], data["scratch"]
    size = f"{args.image_size}x{args.image_size}"
    rows = [
        (
            f"`build_classifier(weights=<source backbone>)` + `fine_tune` "
            f"({args.head_epochs} head + {args.epochs} full epochs)",
            t,
        ),
        (f"same network, `weights=None`, from scratch ({total_epochs} epochs)", s),
    ]
    table = "\n".join(
        f"| {label} | **{r['final_val_accuracy']:.3f}** | {r['best_val_accuracy']:.3f} "
        f"| {r['wall_s']:.0f} s |"
        for label, r in rows
    )
    md = f"""# Transfer learning: pretrained backbone vs from scratch (CIFAR-10, {len(x_tr)} images)

Backbone {data["setup"]["backbone"]}, 32x32 JPEG images resized to {size} inside the model.
Source task: {", ".join(SOURCE)} ({len(x_src)} images, {args.pretrain_epochs} epochs,
{pretrain_s:.0f} s, not counted below). Target task: {", ".join(TARGET)},
{args.train_per_class} training images per class, {len(x_val)} held-out validation images.
Both runs train {total_epochs} epochs on the same {len(x_tr)} images with the same random
flips; BatchNorm momentum is 0.9 wherever BatchNorm trains (source pretraining, scratch).

| run | val accuracy (final) | val accuracy (best epoch) | wall time |
|---|---:|---:|---:|
{table}

Chance level is 0.200. Wall times include graph tracing (two compiles for `fine_tune`, one
for scratch) and per-epoch validation, on {os.cpu_count()} CPU cores shared with other work
(load average at the end: {os.getloadavg()[0]:.1f}).

Validation accuracy per epoch:

- transfer: {", ".join(f"{a:.3f}" for a in transfer_curve)}
- scratch: {", ".join(f"{a:.3f}" for a in scratch_curve)}
"""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "transfer.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / "transfer.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
