"""Command-line start-up: how long ``cnnkit`` takes to answer before any work.

Times, in fresh processes, ``cnnkit --help``, ``cnnkit --version`` and a configuration
mistake (``cnnkit train`` on a file with a misspelled section), each the median of
several runs, and checks that none of them loaded Keras or TensorFlow. Target: each
well under 1.5 s on a 2-core machine. For comparison it also times ``import keras``
(what every answer cost when the parser imported TensorFlow).

Writes ``benchmarks/results/cli.json`` and ``benchmarks/results/cli.md``.

Run: ``python benchmarks/cli.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _common import write_results

TARGET_S = 1.5

PROBE = (
    "import sys\n"
    "from keras_cnnkit.cli.main import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
)


def _time(argv: list[str], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        seconds.append(time.perf_counter() - start)
        if "AssertionError" in proc.stderr:
            sys.exit(f"{argv} loaded Keras or TensorFlow:\n{proc.stderr}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "run.toml")
        with open(config, "w") as f:
            f.write('[data]\ntrain = "d.npz"\n[trainig]\nepochs = 1\n')
        cases = {
            "cnnkit --help": ["--help"],
            "cnnkit --version": ["--version"],
            "cnnkit train (misspelled section)": ["train", config],
        }
        runs = {
            name: _time([sys.executable, "-c", PROBE, *cli], args.repeats)
            for name, cli in cases.items()
        }
        runs["python -c 'import keras' (for comparison)"] = _time(
            [sys.executable, "-c", "import keras"], max(3, args.repeats // 2)
        )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    data = {
        "target_s": TARGET_S,
        "median_s": {k: statistics.median(v) for k, v in runs.items()},
        "raw_s": runs,
        "cores": os.cpu_count(),
        "load_average_end": load,
    }
    lines = [
        "# Command-line start-up",
        "",
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.repeats} fresh "
        f"processes each (load average at the end: {load}). Target: under {TARGET_S} s.",
        "",
        "| command | median (s) | slowest (s) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {k} | {statistics.median(v):.2f} | {max(v):.2f} |" for k, v in runs.items()]
    lines += [
        "",
        "None of the cnnkit answers loads Keras or TensorFlow (checked in every run).",
        "",
    ]
    write_results("cli", data, "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
