"""CIFAR-10: the classic, the fast and the airbench recipe on the real images, per epoch.

On the 50,000 CIFAR-10 training JPEGs in ``../shared/data`` (a seeded 5,000-image validation
split held out), trains ``cifar10_classic_recipe`` and ``cifar10_fast_recipe`` within time
budgets and reports, per epoch: wall time, images/s, training FLOPs (counted from the
model's graph), achieved GFLOP/s against the float32 matmul peak measured in the same run,
and validation accuracy. Then: how soon the fast recipe reaches the accuracy the classic
recipe has at the end of its budget.

The full configuration then trains ``cifar10_airbench_recipe`` with 3 seeds on all 50,000
images (``--airbench-train all``; ``split`` trains on the 45,000 and validates on the
held-out 5,000 every epoch), counts its training PFLOPs, times the test-time augmented
evaluation, evaluates each seed on ``--test-folder`` (the official test split, laid out as
``<class>/<file>``) when given, and draws validation accuracy against training time for
every recipe into ``results/cifar10.png`` (needs matplotlib).

Run: ``python benchmarks/cifar10.py`` (defaults: classic 30 min, fast 60 min, airbench
3 seeds of 10 epochs; see --help for shorter runs, ``--recipes airbench`` for one recipe).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    CACHE,
    SHARED_CIFAR,
    forward_flops,
    machine,
    machine_markdown,
    matmul_peak,
    write_results,
)

from keras_cnnkit import (  # noqa: E402
    cifar10_airbench_recipe,
    cifar10_classic_recipe,
    cifar10_fast_recipe,
    load_image_folder,
)


class EpochLog(keras.callbacks.Callback):
    """Per-epoch wall time, throughput and validation accuracy; stops at a time budget."""

    def __init__(self, recipe, x_val, y_val, n_train, budget_s, flops_per_image):
        super().__init__()
        self.recipe, self.x_val, self.y_val = recipe, x_val, y_val
        self.n_train, self.budget_s, self.flops = n_train, budget_s, flops_per_image
        self.validate = x_val is not None and len(x_val) > 0
        self.rows: list[dict] = []
        self.train_s = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._t
        self.train_s += seconds
        val_start = time.perf_counter()
        acc = self.recipe.evaluate(self.x_val, self.y_val) if self.validate else float("nan")
        val_s = time.perf_counter() - val_start
        ips = self.n_train / seconds
        row = {
            "epoch": epoch + 1,
            "epoch_s": seconds,
            "train_s": self.train_s,
            "img_per_s": ips,
            "gflop_per_s": ips * self.flops / 1e9,
            "val_accuracy": acc,
            "val_s": val_s,
        }
        self.rows.append(row)
        print(
            f"{self.recipe.name} epoch {epoch + 1}: {seconds:.0f} s, {ips:.0f} img/s, val {acc:.4f}",
            flush=True,
        )
        if self.train_s >= self.budget_s:
            self.model.stop_training = True


def run(recipe, train, val, budget_s, epochs):
    flops = 3 * forward_flops(recipe.model, train.x.shape[1:])
    log = EpochLog(recipe, val.x, val.y, len(train.y), budget_s, flops)
    recipe.fit(train.x, train.y, epochs=epochs, callbacks=[log], verbose=0)
    return flops, log.rows


def run_airbench(args, data, train, val, curves) -> dict:
    """The airbench recipe, ``args.airbench_seeds`` seeds: per-epoch rows, PFLOPs, TTA time."""
    fit_on = data if args.airbench_train == "all" else train
    x_val, y_val = (None, None) if args.airbench_train == "all" else (val.x, val.y)
    seeds = []
    for seed in range(args.airbench_seeds):
        keras.utils.set_random_seed(seed)
        recipe = cifar10_airbench_recipe(
            epochs=args.airbench_epochs, seed=seed, precision=args.precision
        )
        flops = recipe.training_flops(1, 1)  # per image and epoch
        log = EpochLog(recipe, x_val, y_val, len(fit_on.y), float("inf"), flops)
        start = time.perf_counter()
        recipe.fit(fit_on.x, fit_on.y, callbacks=[log], verbose=0)
        fit_s = time.perf_counter() - start
        row = {
            "seed": seed,
            "epochs": log.rows,
            "fit_s_incl_whitening": fit_s,
            "train_pflops": recipe.training_flops(len(fit_on.y)) / 1e15,
        }
        for name, images in (("validation", val), ("test", _test_data(args))):
            if images is None or (name == "validation" and args.airbench_train == "all"):
                continue
            start = time.perf_counter()
            row[f"{name}_accuracy_tta"] = recipe.evaluate(images.x, images.y)
            row[f"{name}_tta_s"] = time.perf_counter() - start
        seeds.append(row)
        curves[f"airbench seed {seed}"] = log.rows
    lines = [
        f"### Airbench recipe: {len(seeds)} seed(s), {args.airbench_epochs} epochs, "
        f"trained on {len(fit_on.y)} images, precision {recipe.precision}",
        "",
        "| seed | epochs min | fit min (whitening incl.; per-epoch validation too with split) "
        "| TTA eval s | train PFLOPs | held-out acc | test acc |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in seeds:
        tta_s = r.get("test_tta_s", r.get("validation_tta_s", float("nan")))
        r["epochs_s"] = r["epochs"][-1]["train_s"]
        lines.append(
            f"| {r['seed']} | {r['epochs_s'] / 60:.1f} | {r['fit_s_incl_whitening'] / 60:.1f} | "
            f"{tta_s:.0f} | {r['train_pflops']:.3f} | "
            f"{r.get('validation_accuracy_tta', float('nan')):.4f} | "
            f"{r.get('test_accuracy_tta', float('nan')):.4f} |"
        )
    # Training plus TTA on the official split's 10,000 images, all 50,000 training images:
    # measured directly with --airbench-train all and --test-folder, else scaled from
    # these epochs (time per epoch is linear in the images) and this TTA rate.
    per_image_s = np.mean([r["epochs_s"] / len(fit_on.y) for r in seeds])
    tta_per_image_s = np.mean([tta / n for tta, n in _tta_rates(seeds, val, args)])
    setup_s = np.mean([r["fit_s_incl_whitening"] - r["epochs_s"] for r in seeds])
    if args.airbench_train == "split":
        setup_s -= np.mean([_validation_s(r) for r in seeds])
    total_min = (per_image_s * 50_000 + setup_s + tta_per_image_s * 10_000) / 60
    how = "measured" if len(fit_on.y) == 50_000 else "scaled from these epochs"
    lines += [
        "",
        f"Training on all 50,000 images plus test-time-augmented evaluation of 10,000 "
        f"({how}; whitening fit and the first step's tracing included): **{total_min:.1f} min** "
        "(target at most 20 min).",
    ]
    for key in ("validation_accuracy_tta", "test_accuracy_tta"):
        values = [r[key] for r in seeds if key in r]
        if values:
            lines += ["", f"Mean {key.replace('_', ' ')}: **{np.mean(values):.4f}**."]
    return {
        "seeds": seeds,
        "train": args.airbench_train,
        "projected_total_min_50k_plus_tta": total_min,
        "md": "\n".join(lines),
    }


def _tta_rates(seeds, val, args):
    """``(seconds, images)`` of each seed's test-time-augmented evaluation."""
    for r in seeds:
        if "test_tta_s" in r:
            yield r["test_tta_s"], 10_000
        elif "validation_tta_s" in r:
            yield r["validation_tta_s"], len(val.y)


def _validation_s(row) -> float:
    """Seconds a run spent on per-epoch validation (inside ``fit``, outside the epochs)."""
    return sum(e.get("val_s", 0.0) for e in row["epochs"])


def _test_data(args):
    """The official test split from ``--test-folder``, or ``None``."""
    if not args.test_folder:
        return None
    return load_image_folder(args.test_folder, cache_dir=CACHE)


def plot(curves: dict[str, list[dict]], name: str) -> None:
    """Validation accuracy against cumulative training time, one line per run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no accuracy-vs-time figure", flush=True)
        return
    from _common import RESULTS

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, rows in curves.items():
        points = [(r["train_s"] / 60, r["val_accuracy"]) for r in rows]
        points = [(t, a) for t, a in points if a == a]  # runs without validation: no line
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    ax.axhline(0.94, color="grey", linestyle="--", linewidth=1, label="94 %")
    ax.set_xlabel("training time (min)")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / f"{name}.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classic-minutes", type=float, default=30.0)
    parser.add_argument("--fast-minutes", type=float, default=60.0)
    parser.add_argument("--fast-epochs", type=int, default=12, help="length of the fast schedule")
    parser.add_argument("--fast-width", type=float, default=1.0)
    parser.add_argument("--train-size", type=int, default=None, help="use a subset for a quick run")
    parser.add_argument("--precision", default="auto")
    parser.add_argument(
        "--recipes", default="classic,fast,airbench", help="comma-separated recipes to run"
    )
    parser.add_argument("--airbench-seeds", type=int, default=3)
    parser.add_argument("--airbench-epochs", type=int, default=10)
    parser.add_argument(
        "--airbench-train",
        choices=("all", "split"),
        default="all",
        help="all: train on the 50,000 images; split: on 45,000, validating on the held-out 5,000",
    )
    parser.add_argument("--test-folder", help="the official test split (<class>/<file> images)")
    args = parser.parse_args()
    recipes = set(args.recipes.split(","))
    if not SHARED_CIFAR.exists():
        raise SystemExit(f"CIFAR-10 images not found at {SHARED_CIFAR}")

    m = machine()
    peak = matmul_peak("float32")
    data = load_image_folder(SHARED_CIFAR, subdir="train", cache_dir=CACHE)
    train, val = data.split(5000, seed=0)
    if args.train_size:
        idx = np.random.default_rng(1).permutation(len(train.y))[: args.train_size]
        train = train._take(idx)
    print(
        f"{len(train.y)} training, {len(val.y)} validation images; fp32 peak {peak:.0f} GFLOP/s",
        flush=True,
    )

    curves: dict[str, list[dict]] = {}
    airbench = run_airbench(args, data, train, val, curves) if "airbench" in recipes else None
    if not {"classic", "fast"} <= recipes:
        if airbench is None:
            raise SystemExit("--recipes: give classic,fast (compared together) and/or airbench")
        header = [
            "# CIFAR-10 in minutes: the airbench recipe on this machine",
            "",
            machine_markdown(m),
            "",
            f"float32 matmul peak measured in the same run: {peak:.0f} GFLOP/s. Data: the "
            "CIFAR-10 training JPEGs, a seeded 5,000-image validation split held out "
            "(`--airbench-train split`) or all 50,000 (`all`).",
            "",
            "",
        ]
        write_results(
            "cifar10_airbench",
            {"machine": m, "args": vars(args), "airbench": airbench},
            "\n".join(header) + airbench["md"].replace("### ", "## ", 1),
        )
        plot(curves, "cifar10_airbench")
        return
    keras.utils.set_random_seed(0)
    classic = cifar10_classic_recipe(precision=args.precision)
    classic_flops, classic_rows = run(
        classic, train, val, args.classic_minutes * 60, classic.epochs
    )
    keras.utils.set_random_seed(0)
    fast = cifar10_fast_recipe(
        epochs=args.fast_epochs, width=args.fast_width, precision=args.precision
    )
    fast_flops, fast_rows = run(fast, train, val, args.fast_minutes * 60, args.fast_epochs)
    curves["classic"], curves["fast"] = classic_rows, fast_rows

    target = classic_rows[-1]["val_accuracy"]
    reached = next((r for r in fast_rows if r["val_accuracy"] >= target), None)
    ninety = next((r for r in fast_rows if r["val_accuracy"] >= 0.90), None)
    lines = [
        "# CIFAR-10: classic vs fast recipe",
        "",
        machine_markdown(m),
        "",
        f"{len(train.y)} training images, {len(val.y)} held-out validation images (seeded split). "
        f"float32 matmul peak measured in the same run: **{peak:.0f} GFLOP/s**. Budgets: classic "
        f"{args.classic_minutes:g} min, fast {args.fast_minutes:g} min ({args.fast_epochs}-epoch schedule, "
        f"width {args.fast_width:g}). Validation accuracy of the fast recipe uses flip test-time augmentation.",
        "",
        "| recipe | epoch | epoch s | total train s | img/s | train GFLOP/img | GFLOP/s | % fp32 peak | val acc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, flops, rows in (
        ("classic", classic_flops, classic_rows),
        ("fast", fast_flops, fast_rows),
    ):
        for r in rows:
            lines.append(
                f"| {name} | {r['epoch']} | {r['epoch_s']:.0f} | {r['train_s']:.0f} | {r['img_per_s']:.0f} | "
                f"{flops / 1e9:.3f} | {r['gflop_per_s']:.0f} | {100 * r['gflop_per_s'] / peak:.0f} % | "
                f"{r['val_accuracy']:.4f} |"
            )
    summary = (
        f"Classic after {classic_rows[-1]['train_s'] / 60:.1f} min: {target:.4f}. "
        + (
            f"Fast reached it after {reached['train_s'] / 60:.1f} min "
            f"({classic_rows[-1]['train_s'] / reached['train_s']:.1f}x sooner). "
            if reached
            else "Fast did not reach it within its budget. "
        )
        + (
            f"Fast reached 90 % after {ninety['train_s'] / 60:.1f} min."
            if ninety
            else f"Fast did not reach 90 % (best {max(r['val_accuracy'] for r in fast_rows):.4f})."
        )
    )
    lines += ["", summary]
    if airbench:
        lines += ["", airbench["md"]]
    plot(curves, "cifar10")
    write_results(
        "cifar10",
        {
            "machine": m,
            "fp32_peak_gflops": peak,
            "args": vars(args),
            "train_images": len(train.y),
            "classic": {"train_gflop_per_image": classic_flops / 1e9, "epochs": classic_rows},
            "fast": {"train_gflop_per_image": fast_flops / 1e9, "epochs": fast_rows},
            "classic_final_accuracy": target,
            "fast_minutes_to_classic": reached["train_s"] / 60 if reached else None,
            "fast_minutes_to_90": ninety["train_s"] / 60 if ninety else None,
            "airbench": {k: v for k, v in (airbench or {}).items() if k != "md"},
        },
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
