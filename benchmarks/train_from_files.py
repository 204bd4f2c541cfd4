"""``cnnkit train`` from the CIFAR-10 JPEG folder against the same recipe on in-memory arrays.

Rows, all in one run on a subset of the CIFAR-10 training JPEGs (``n/10`` per class,
a seeded 10% validation split), the ``cifar10_airbench`` recipe with its defaults:

* **in memory**: ``cifar10_airbench_recipe().fit`` on the arrays decoded from the
  folder (the ceiling: no file is read during training);
* **cnnkit train, data.cache = "auto"**: the command in a fresh process, reading the
  folder (decoded once into memory, then the recipe's own batches);
* **cnnkit train, data.cache = "none"** (``--streaming``): the same command streaming
  the files every epoch through ``from_directory`` (the recipe's flips and shifts are
  then not applied: it trains on the tf.data stream as it comes).

Every epoch counts training and validation (the model's test-time augmentation
included); the rate is training images / epoch wall time. The command's epochs are
timed from its progress lines (each line time-stamped as it arrives), the in-memory
epochs by a callback. The first epoch (tracing) is reported apart; the steady rate is
the mean of the later epochs. The decode time (the command's own log line) is shown
with the rate of a whole 10-epoch run that includes it.

Run: ``python benchmarks/train_from_files.py [--images 20000] [--epochs 3] [--streaming]``.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import EpochTimer, machine, machine_markdown, write_results  # noqa: E402
from pipeline import cifar_subset  # noqa: E402

from keras_cnnkit.training._data import load_data  # noqa: E402
from keras_cnnkit.training.cifar10 import cifar10_airbench_recipe  # noqa: E402

VALIDATION = 0.1
SEED = 0
RUN_EPOCHS = 10  # the recipe's own length, for the whole-run figure


def in_memory(data, epochs: int) -> dict:
    x, y, x_val, y_val = data.arrays
    recipe = cifar10_airbench_recipe(epochs=epochs, seed=SEED, precision="auto")
    recipe.top_k = 5  # as cnnkit train reports it
    timer = EpochTimer()
    recipe.fit(x, y, validation_data=(x_val, y_val), callbacks=[timer], verbose=0)
    return {"epoch_seconds": timer.seconds, "precision": recipe.precision}


def _cnnkit() -> list[str]:
    script = pathlib.Path(sys.executable).with_name("cnnkit")
    if script.exists():
        return [str(script)]
    code = "import sys, keras_cnnkit.cli.main as m; sys.exit(m.main(sys.argv[1:]))"
    return [sys.executable, "-c", code]


def command(root: pathlib.Path, epochs: int, cache: str, work: pathlib.Path) -> dict:
    """``cnnkit train`` in a fresh process; epochs timed from its progress lines."""
    out = work / f"run-{cache}"
    config = work / f"{cache}.toml"
    config.write_text(
        f'[data]\ntrain = "{root}"\nvalidation_split = {VALIDATION}\ncache = "{cache}"\n\n'
        f'[model]\nrecipe = "cifar10_airbench"\n\n'
        f"[training]\nepochs = {epochs}\nseed = {SEED}\n\n"
        f'[output]\ndir = "{out}"\noverwrite = true\n'
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*_cnnkit(), "train", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    stamped: list[tuple[float, str]] = []
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    reader.start()
    for line in proc.stdout:
        stamped.append((time.perf_counter() - start, line.rstrip()))
    code = proc.wait()
    reader.join()
    total = time.perf_counter() - start
    if code:
        raise SystemExit(f"cnnkit train exited {code}:\n{''.join(errors)[-3000:]}")
    begins = [t for t, line in stamped if re.match(r"Epoch \d+/\d+$", line)]
    ends = [t for t, line in stamped if re.match(r"\d+/\d+ - ", line)]
    if len(begins) != epochs or len(ends) != epochs:
        raise SystemExit(f"could not time the epochs from the output:\n{stamped}")
    decoded = re.search(r"decoded into memory \(([\d.]+) MiB\) in ([\d.]+) s", "".join(errors))
    shutil.rmtree(out, ignore_errors=True)
    return {
        "epoch_seconds": [e - b for b, e in zip(begins, ends)],
        "decode_seconds": float(decoded.group(2)) if decoded else None,
        "decoded_mib": float(decoded.group(1)) if decoded else None,
        "start_to_first_epoch_seconds": begins[0],
        "process_seconds": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20000, help="CIFAR-10 JPEGs (n/10 a class)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--streaming", action="store_true", help='also time data.cache = "none" (streaming)'
    )
    args = parser.parse_args()
    if args.epochs < 2:
        raise SystemExit("--epochs: at least 2 (the first epoch is timed apart)")
    root = cifar_subset(args.images)
    if root is None:
        raise SystemExit("the CIFAR-10 JPEGs are needed (../shared/data)")
    m = machine()
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    data = load_data(
        {"train": str(root), "validation_split": VALIDATION, "cache": "memory"},
        batch_size=1024,
        seed=SEED,
    )
    decode_here = time.perf_counter() - start
    n_train, n_val = len(data.arrays[0]), len(data.arrays[2])
    rows = {"in memory (recipe.fit on the decoded arrays)": in_memory(data, args.epochs)}
    with tempfile.TemporaryDirectory(prefix="train-from-files-") as work:
        caches = ["auto", "none"] if args.streaming else ["auto"]
        for cache in caches:
            name = f'cnnkit train from the folder, data.cache = "{cache}"'
            rows[name] = command(root, args.epochs, cache, pathlib.Path(work))
    m["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    for row in rows.values():
        steady = row["epoch_seconds"][1:]
        row["first_epoch_img_s"] = n_train / row["epoch_seconds"][0]
        row["steady_img_s"] = n_train * len(steady) / sum(steady)
    memory = rows["in memory (recipe.fit on the decoded arrays)"]
    base, precision = memory["steady_img_s"], memory["precision"]
    for row in rows.values():
        row["vs_in_memory"] = row["steady_img_s"] / base
        decode = row.get("decode_seconds")
        if decode is not None:  # a whole run of the recipe's length, decode included
            epoch = n_train / row["steady_img_s"]
            row["run_img_s_with_decode"] = n_train * RUN_EPOCHS / (decode + RUN_EPOCHS * epoch)
            row["run_vs_in_memory"] = row["run_img_s_with_decode"] / base
    lines = [
        "# Training from files: `cnnkit train` on the JPEG folder vs in-memory arrays",
        "",
        machine_markdown(m),
        f"Load average (1 min) at the start and the end: {m['load_average'][0]}, "
        f"{m['load_average'][1]}.",
        "",
        f"`cifar10_airbench` recipe (batch 1024, precision {precision}), "
        f"{n_train} training + {n_val} validation CIFAR-10 JPEGs (32x32), {args.epochs} epochs a row; "
        "an epoch is training plus validation (with the model's test-time augmentation); "
        "img/s = training images / epoch wall time. Target: from the folder >= 95% of the "
        "in-memory rate.",
        "",
        "| route | first epoch img/s | later epochs img/s | vs in memory | decode s "
        f"| {RUN_EPOCHS}-epoch run incl. decode, vs in memory |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        decode = row.get("decode_seconds")
        run = row.get("run_vs_in_memory")
        lines.append(
            f"| {name} | {row['first_epoch_img_s']:.0f} | {row['steady_img_s']:.0f} | "
            f"{row['vs_in_memory']:.1%} | {'-' if decode is None else f'{decode:.1f}'} | "
            f"{'-' if run is None else f'{run:.1%}'} |"
        )
    lines += [
        "",
        f"Decoding the {n_train + n_val} files into memory took {decode_here:.1f} s in the "
        "benchmark's own process (the same reader as the command). Each command row is a fresh "
        "process: its first epoch also traces the model; its start-up (imports, decode, "
        "model build, whitening fit) before the first epoch: "
        + ", ".join(
            f"{row['start_to_first_epoch_seconds']:.1f} s ({name.split(', ')[-1]})"
            for name, row in rows.items()
            if "start_to_first_epoch_seconds" in row
        )
        + ".",
    ]
    write_results(
        "train_from_files",
        {
            "machine": m,
            "images": args.images,
            "train": n_train,
            "validation": n_val,
            "epochs": args.epochs,
            "decode_seconds_in_process": decode_here,
            "rows": rows,
        },
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
