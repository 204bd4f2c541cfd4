"""``cnnkit demo``: the translation-invariance experiment, offline."""

from __future__ import annotations

import argparse
import time


def register(subparsers) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="train a dense net and conv stacks on centered digits, test them on shifted digits",
        description=(
            "Offline experiment on scikit-learn's handwritten digits: a dense network, a conv "
            "stack with global pooling, and the conv stack with shift augmentation are trained "
            "on centered digits and evaluated on shifted ones."
        ),
    )
    parser.add_argument(
        "--output", default="demo-output", help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--epochs", type=int, default=20, help="epochs per model (default: %(default)s)"
    )
    parser.add_argument("--max-shift", type=int, default=8, help="largest shift in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the experiment and print its table."""
    from keras_cnnkit.experiments.translation import run_translation_experiment
    from keras_cnnkit.hardware import detect_hardware

    info = detect_hardware()
    print(f"keras backend {info.backend}, {info.device} ({info.device_name}), precision float32")
    start = time.perf_counter()
    result = run_translation_experiment(
        args.output, epochs=args.epochs, max_shift=args.max_shift, seed=args.seed
    )
    print()
    print(f"Accuracy on test digits, centered and shifted by up to {args.max_shift} pixels:")
    print()
    print(result.table())
    print()
    base = result.results["dense"]
    best = result.results[result.best]
    print(
        f"Shifted digits: the dense network keeps {base.shifted_mean / base.centered:.0%} of its "
        f"centered accuracy; '{result.best}' keeps {best.shifted_mean / best.centered:.0%}."
    )
    for name, secs in result.seconds.items():
        print(f"  trained {name} in {secs:.1f} s")
    print(f"best model ('{result.best}') saved to {result.model_path}")
    print(f"reloaded predictions identical: {result.reload_identical}")
    if result.heatmap_path:
        print(f"heatmap: {result.heatmap_path}")
    if result.gradcam_path:
        print(f"class activation maps of shifted digits: {result.gradcam_path}")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0 if result.reload_identical else 1
