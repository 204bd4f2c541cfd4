"""``cnnkit info``: what the machine is and which precision runs fastest on it."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    """Add the ``info`` command."""
    parser = subparsers.add_parser(
        "info", help="show backend, device, CPU features and the precision 'auto' chooses"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the hardware report."""
    import keras
    import tensorflow as tf

    from keras_cnnkit._version import __version__
    from keras_cnnkit.hardware import detect_hardware

    info = detect_hardware()
    versions = {
        "keras_cnnkit": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
    }
    if args.json:
        print(json.dumps({**info.as_dict(), "versions": versions}, indent=2))
    else:
        print(info)
        print("versions   " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        print()
        print(f"precision 'auto' chooses {info.precision} on this machine: {info.reason}.")
    return 0
