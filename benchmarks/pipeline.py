"""Throughput of the preprocessing pipeline against Keras' own loader, measured in one run.

Rows, per data set (a subset of the CIFAR-10 training JPEGs, and generated 640x480
photo-sized JPEGs so that resizing matters), all to 224x224 batches of 32:

* raw decode: ``tf.io.decode_jpeg`` of every file in ``tf.data`` on all cores, nothing
  else (the ceiling);
* baseline: ``keras.utils.image_dataset_from_directory`` followed by the same Keras
  ``RandomFlip`` + ``RandomTranslation`` layers mapped over the batches;
* ours: ``keras_cnnkit.data.from_directory`` with ``augment={"flip": True,
  "translate": 0.1}``; the up-front file check (header, then one decode of every file by
  the pipeline's own decoder) is timed separately and also shown folded into a first
  epoch.

Every rate is images/s over a full pass (the best of three after a first one, so tracing
is excluded and a pass disturbed by other work on a shared machine does not count);
ratios are to the baseline and to raw decode. The CIFAR-10 rows need
``../shared/data/cifar10-train-jpeg.tar.gz`` (extracted once into the cache folder,
``$CNNKIT_BENCH_CACHE`` or ``/tmp/cnnkit-bench-cache``) and are skipped with a message
when it is absent.

Run: ``python benchmarks/pipeline.py [--cifar-images 2000] [--photos 200] [--previous
OLD.json ...]``; each ``--previous`` adds the rows of an earlier run (e.g. before a change, on
the same machine; its JSON's ``label`` names it) to the table for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tarfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _common import CACHE, SHARED_CIFAR, machine, machine_markdown, write_results  # noqa: E402
from PIL import Image  # noqa: E402

from keras_cnnkit.data import from_directory  # noqa: E402

SIZE = (224, 224)
BATCH = 32


def cifar_subset(n: int):
    """``n`` CIFAR-10 JPEGs (n/10 per class) in a class-folder tree under the cache."""
    if not SHARED_CIFAR.is_file():
        print(f"skipping CIFAR-10 rows: {SHARED_CIFAR} not found")
        return None
    extracted = CACHE / "cifar10-jpeg"
    if not (extracted / ".extracted").exists():
        extracted.mkdir(parents=True, exist_ok=True)
        with tarfile.open(SHARED_CIFAR) as tar:
            tar.extractall(extracted, filter="data")
        (extracted / ".extracted").touch()
    root = CACHE / f"pipeline-cifar-{n}"
    if not root.exists():
        tmp = root.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for cls in sorted(p.name for p in (extracted / "train").iterdir() if p.is_dir()):
            (tmp / cls).mkdir(parents=True)
            for f in sorted((extracted / "train" / cls).iterdir())[: n // 10]:
                os.link(f, tmp / cls / f.name)
        tmp.rename(root)
    return root


def photo_set(n: int):
    """``n`` generated 640x480 JPEGs (smooth gradients plus noise, quality 90) in 2 classes."""
    root = CACHE / f"pipeline-photos-{n}"
    if root.exists():
        return root
    tmp = root.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
    for i in range(n):
        cls = tmp / ("a" if i % 2 else "b")
        cls.mkdir(parents=True, exist_ok=True)
        f = rng.uniform(0.005, 0.03, 3)
        img = np.stack([127 + 100 * np.sin(f[c] * (xx + yy * (c + 1)) + i) for c in range(3)], -1)
        img += rng.normal(0, 12, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
            cls / f"{i:04d}.jpg", quality=90
        )
    tmp.rename(root)
    return root


def timed_pass(ds) -> float:
    start = time.perf_counter()
    for _batch in ds:
        pass
    return time.perf_counter() - start


def best_pass(ds, passes: int = 3) -> float:
    """The fastest of ``passes`` warm passes: on a shared machine, the least disturbed."""
    return min(timed_pass(ds) for _ in range(passes))


def raw_decode(root) -> tf.data.Dataset:
    files = sorted(str(p) for p in root.glob("*/*.jpg"))
    ds = tf.data.Dataset.from_tensor_slices(files)
    # Only the shape leaves the map: the decode runs in full, nothing is copied out.
    ds = ds.map(
        lambda p: tf.shape(tf.io.decode_jpeg(tf.io.read_file(p), channels=3)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.batch(BATCH).prefetch(tf.data.AUTOTUNE), len(files)


def keras_baseline(root) -> tf.data.Dataset:
    augment = keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=0),
            keras.layers.RandomTranslation(0.1, 0.1, seed=1),
        ]
    )
    ds = keras.utils.image_dataset_from_directory(
        root, image_size=SIZE, batch_size=BATCH, seed=0, verbose=False
    )
    ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def ours(root):
    start = time.perf_counter()
    ds = from_directory(
        root, image_size=SIZE, batch_size=BATCH, seed=0, augment={"flip": True, "translate": 0.1}
    )
    return ds, time.perf_counter() - start


def measure(name: str, root) -> dict:
    print(f"\n== {name}: {root}")
    raw, n = raw_decode(root)
    timed_pass(raw)
    t_raw = best_pass(raw)
    base = keras_baseline(root)
    timed_pass(base)
    t_base = best_pass(base)
    mine, t_check = ours(root)
    t_first = timed_pass(mine)
    t_mine = best_pass(mine)
    row = {
        "images": n,
        "raw_decode_ips": n / t_raw,
        "keras_baseline_ips": n / t_base,
        "ours_ips": n / t_mine,
        "ours_file_check_s": t_check,
        "ours_first_epoch_with_check_ips": n / (t_check + t_first),
    }
    row["ours_vs_baseline"] = row["ours_ips"] / row["keras_baseline_ips"]
    row["ours_vs_raw_decode"] = row["ours_ips"] / row["raw_decode_ips"]
    row["first_epoch_vs_baseline"] = (
        row["ours_first_epoch_with_check_ips"] / row["keras_baseline_ips"]
    )
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cifar-images", type=int, default=2000)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument(
        "--previous",
        action="append",
        default=[],
        help="JSON of an earlier run to show beside this one (repeatable; its 'label' names it)",
    )
    args = parser.parse_args()
    sets = {}
    root = cifar_subset(args.cifar_images)
    if root is not None:
        sets[f"CIFAR-10 JPEGs 32x32 (n={args.cifar_images})"] = root
    sets[f"photo JPEGs 640x480 (n={args.photos})"] = photo_set(args.photos)
    m = machine()
    load_before = os.getloadavg()[0]
    rows = {name: measure(name, root) for name, root in sets.items()}
    m["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    lines = [
        "# Preprocessing pipeline throughput",
        "",
        machine_markdown(m),
        f"Load average (1 min) at the start and the end of the run: {m['load_average'][0]}, "
        f"{m['load_average'][1]} (other work on the machine slows every row alike).",
        "",
        f"224x224 batches of {BATCH}, flip + translate augmentation; images/s over the best of 3 warm passes. "
        "Targets: >= 2x the Keras baseline, >= 80% of raw decode.",
        "",
        "| data | raw decode | Keras baseline | ours | ours / baseline | ours / raw decode | file check (s) | ours, first epoch incl. check |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    previous = []
    for path in args.previous:
        with open(path) as f:
            previous.append(json.load(f))
    table = [(name, r, "") for name, r in rows.items()]
    for run in previous:
        label = run.get("label", "previous run")
        table += [(name, r, label) for name, r in run["rows"].items()]
    for name, r, label in table:
        name = f"{name}, {label}" if label else name
        lines.append(
            f"| {name} | {r['raw_decode_ips']:.0f} | {r['keras_baseline_ips']:.0f} | {r['ours_ips']:.0f} "
            f"| {r['ours_vs_baseline']:.2f}x | {r['ours_vs_raw_decode']:.0%} | {r['ours_file_check_s']:.2f} "
            f"| {r['ours_first_epoch_with_check_ips']:.0f} ({r['first_epoch_vs_baseline']:.2f}x) |"
        )
    if previous:
        lines += [
            "",
            "Rows with a label after the data set are earlier runs of this script on the same "
            "machine, kept for comparison; unlabelled rows are this run.",
        ]
    results = {"machine": m, "batch_size": BATCH, "image_size": SIZE, "rows": rows}
    if previous:
        results["previous"] = previous
    write_results(
        "pipeline",
        results,
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
