"""Accuracy of the airbench-style CIFAR-10 recipe on the seeded 45,000/5,000 split.

Trains ``cifar10_airbench_recipe`` through the library's engine on the CIFAR-10 JPEG
images (decoded with Pillow), 3 seeds plus ablation rows, and reports per-epoch
validation accuracy (with the model's test-time augmentation), the final accuracy
without / with mirror / with mirror+shift augmentation, and the training PFLOPs.
It imports no TensorFlow, so it runs on any Keras backend (the accuracy-only
validation was run with JAX on a GPU)::

    KERAS_BACKEND=jax python benchmarks/cifar10_accuracy.py --data cifar10-train-jpeg.tar.gz \\
        --out results/cifar10_gpu_validation.json

``--limit 300 --epochs 1 --batch-size 64`` is a quick dry run.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras_cnnkit  # noqa: E402, F401  (before Keras: loads only what is used)


def _split_module():
    """The data layer's split, loaded without the TensorFlow-based data pipelines."""
    path = ROOT / "keras_cnnkit" / "data" / "_split.py"
    spec = importlib.util.spec_from_file_location("_cnnkit_split", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_jpegs(tarball: str, limit: int | None = None):
    """Decode ``train/<class>/<file>.jpg`` members; keys are ``<class>/<file>.jpg``."""
    from PIL import Image

    items = []
    with tarfile.open(tarball) as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".jpg"):
                continue
            parts = member.name.split("/")
            key = "/".join(parts[-2:])
            data = tar.extractfile(member).read()
            items.append((key, data))
    items.sort()
    if limit:
        rng = np.random.default_rng(0)
        items = [items[i] for i in sorted(rng.choice(len(items), limit, replace=False))]
    classes = sorted({k.split("/")[0] for k, _ in items})
    x = np.stack(
        [np.asarray(Image.open(io.BytesIO(d)).convert("RGB"), dtype=np.uint8) for _, d in items]
    )
    y = np.array([classes.index(k.split("/")[0]) for k, _ in items], dtype=np.int32)
    return [k for k, _ in items], x, y, classes


def _views_accuracy(recipe, x, y) -> dict:
    """Accuracy of the classifier alone, with mirror, and with mirror + shifts."""
    classifier = recipe.model.get_layer("tta").layer
    xf = x.astype("float32")

    def logp(images):
        p = classifier.predict(images, batch_size=1000, verbose=0)
        return np.log(np.maximum(p, 1e-30))

    pad = np.pad(xf, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    h, w = x.shape[1:3]
    plain = logp(xf)
    mirror = 0.5 * plain + 0.5 * logp(xf[:, :, ::-1])
    shifted = [pad[:, :h, :w], pad[:, 2 : h + 2, 2 : w + 2]]
    full = 0.5 * mirror + sum(0.125 * (logp(s) + logp(s[:, :, ::-1])) for s in shifted)
    model_probs = recipe.predict(x)
    return {
        "none": float(np.mean(plain.argmax(-1) == y)),
        "mirror": float(np.mean(mirror.argmax(-1) == y)),
        "mirror_shift": float(np.mean(full.argmax(-1) == y)),
        "model_predict": float(np.mean(model_probs.argmax(-1) == y)),
    }


def run_one(name, x_tr, y_tr, x_val, y_val, args, **options) -> dict:
    import keras

    from keras_cnnkit.training.cifar10 import cifar10_airbench_recipe

    keras.utils.set_random_seed(options.get("seed", 0))
    epochs = options.pop("epochs", args.epochs)
    recipe = cifar10_airbench_recipe(
        epochs=epochs,
        batch_size=args.batch_size,
        precision=options.pop("precision", args.precision),
        **options,
    )
    start = time.perf_counter()
    history = recipe.fit(x_tr, y_tr, validation_data=(x_val, y_val), verbose=2)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    acc = _views_accuracy(recipe, x_val, y_val)
    result = {
        "name": name,
        "options": options,
        "epochs": epochs,
        "batch_size": args.batch_size,
        "precision": recipe.precision,
        "train_images": len(x_tr),
        "val_images": len(x_val),
        "val_accuracy_per_epoch_tta": [float(a) for a in history.history["val_accuracy"]],
        "final_val_accuracy": acc,
        "train_pflops": recipe.training_flops(len(x_tr), epochs) / 1e15,
        "train_pflops_on_50000": recipe.training_flops(50_000, epochs) / 1e15,
        "train_wall_s_incl_compile_and_per_epoch_eval": round(train_s, 1),
        "eval_wall_s": round(time.perf_counter() - start, 1),
    }
    if args.roundtrip and name.startswith("seed"):
        path = Path(args.tmp) / f"{name}.keras"
        recipe.model.save(path)
        loaded = keras.saving.load_model(path)
        a = recipe.model.predict(x_val[:512], verbose=0)
        b = loaded.predict(x_val[:512], verbose=0)
        result["keras_roundtrip_max_abs_diff"] = float(np.max(np.abs(a - b)))
        args.roundtrip = False
    print("RESULT", json.dumps(result), flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="cifar10-train-jpeg.tar.gz")
    ap.add_argument("--out", required=True, help="JSON file written after every run")
    ap.add_argument("--limit", type=int, default=0, help="use this many images (dry run)")
    ap.add_argument("--val", type=int, default=5000, help="held-out images (split seed 0)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ablations", default="no_whitening,no_lookahead,mixed_bfloat16,no_flip")
    ap.add_argument("--budget-s", type=float, default=1e9, help="start no run after this")
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--no-roundtrip", dest="roundtrip", action="store_false")
    args = ap.parse_args()
    t0 = time.perf_counter()

    keys, x, y, classes = load_jpegs(args.data, args.limit or None)
    val = min(args.val, len(x) // 10) if args.limit else args.val
    train_idx, val_idx = _split_module().split_indices(keys, val, seed=0, where="cifar10")
    x_tr, y_tr, x_val, y_val = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    print(
        f"decoded {len(x)} images in {time.perf_counter() - t0:.1f}s; "
        f"train {len(x_tr)} val {len(x_val)}",
        flush=True,
    )

    import keras

    info = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "python": platform.python_version(),
        "device": os.environ.get("DEVICE_NAME", ""),
        "split": "keras_cnnkit.data.split_indices(keys '<class>/<file>.jpg', 5000, seed=0)",
    }
    if info["backend"] == "jax":
        import jax

        info["jax"] = jax.__version__
        info["devices"] = [str(d.device_kind) for d in jax.devices()]
    runs = [(f"seed{s}", {"seed": s}) for s in range(args.seeds)]
    ablation = {
        "no_whitening": {"whitening": False},
        "no_lookahead": {"lookahead": False},
        "mixed_bfloat16": {"precision": "mixed_bfloat16"},
        "no_flip": {"flip": False},
        "random_flip": {"alternating_flips": False},
        "no_label_smoothing": {"label_smoothing": 0.0},
        "no_bias_scale": {"bias_scale": 1.0},
    }
    for a in filter(None, args.ablations.split(",")):
        # "epochsN": the full recipe trained for N epochs
        options = {"epochs": int(a[6:])} if a.startswith("epochs") else dict(ablation[a])
        runs.append((a, dict(options, seed=0)))
    results = []
    for name, options in runs:
        if time.perf_counter() - t0 > args.budget_s:
            print(f"budget reached: {name} not run", flush=True)
            break
        results.append(run_one(name, x_tr, y_tr, x_val, y_val, args, **options))
        Path(args.out).write_text(json.dumps({"info": info, "runs": results}, indent=1))
    seeds = [
        r["final_val_accuracy"]["mirror_shift"] for r in results if r["name"].startswith("seed")
    ]
    if seeds:
        print(f"mean over {len(seeds)} seeds (mirror+shift TTA): {np.mean(seeds):.4f}", flush=True)
    print(f"total {time.perf_counter() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
