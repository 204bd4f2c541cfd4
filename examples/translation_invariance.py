"""Measure translation invariance: dense vs conv stack vs conv stack with shift augmentation.

Trains the three models of ``cnnkit demo`` on scikit-learn's handwritten digits centered on a
32x32 canvas (offline) and tests them on shifted digits; writes the accuracy table, the
shift-robustness heatmap and the best model to ``--output``.

    python examples/translation_invariance.py --output translation-output
    python examples/translation_invariance.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from keras_cnnkit.experiments import run_translation_experiment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _extras import require  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="translation-output", help="folder for the results")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--max-shift", type=int, default=8, help="largest shift in pixels")
    parser.add_argument("--shift-step", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="one epoch, coarse shifts")
    args = parser.parse_args()
    require("sklearn", "demo", "the handwritten digits (scikit-learn's)")

    output = args.output
    if args.smoke:
        epochs, max_shift, step = 1, 4, 4
        if args.output == parser.get_default("output"):
            output = tempfile.mkdtemp(prefix="translation-")
    else:
        epochs, max_shift, step = args.epochs, args.max_shift, args.shift_step
    result = run_translation_experiment(
        output, epochs=epochs, max_shift=max_shift, shift_step=step, seed=args.seed
    )
    print(result.table())
    print(f"results in {output}")


if __name__ == "__main__":
    main()
