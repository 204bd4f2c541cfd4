"""Entry point of the ``cnnkit`` command (also ``python -m keras_cnnkit``).

Each command lives in its own module under ``keras_cnnkit/cli/`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (a callable
taking the parsed arguments and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from keras_cnnkit._version import __version__
from keras_cnnkit.errors import CnnkitError

#: Modules under keras_cnnkit.cli that add commands, in the order ``--help`` lists them.
COMMAND_MODULES = ("demo", "info", "train_commands", "io_commands")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``cnnkit`` argument parser with every command registered.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog="cnnkit", description="Convolutional image models for Keras 3."
    )
    parser.add_argument("--version", action="version", version=f"keras-cnnkit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"keras_cnnkit.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``cnnkit`` command line.

    Args:
        argv: Arguments without the program name (``sys.argv[1:]`` when ``None``).

    Returns:
        The process exit code: 0 on success, 2 on a usage or input error, 1 otherwise.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CnnkitError as exc:
        if args.debug:
            raise
        print(f"cnnkit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cnnkit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
