"""Entry point of the ``cnnkit`` command (also ``python -m keras_cnnkit``).

Each command lives in its own module under ``keras_cnnkit/cli/``, named in
:data:`COMMAND_MODULES`, and exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (a callable taking the parsed arguments and returning an exit code).
Keras and its backend are loaded (quietly, see :mod:`keras_cnnkit.cli._backend`)
before ``func`` runs, unless the command sets ``backend=False``; a command may set
``check``, a callable run with the arguments before that (for example reading a
configuration), so that its user mistakes are reported at once.
A command module imports only the standard library and :mod:`keras_cnnkit.errors` at
its top; everything heavy (Keras, TensorFlow, NumPy) is imported inside ``func``, so
``cnnkit --help``, ``--version`` and argument errors answer at once. Errors raised by
``func`` become exit codes through the one map in :mod:`keras_cnnkit.cli._exit`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from keras_cnnkit._version import __version__
from keras_cnnkit.cli import _backend, _exit

#: Modules under keras_cnnkit.cli that add commands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "demo",
    "info",
    "train",
    "evaluate",
    "predict",
    "explain",
    "export",
    "transfer",
    "pack",
    "data_worker",
)


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
        The process exit code: 0 on success, 2 on a user's mistake, 1 when the work
        fails, 130 when interrupted (see :mod:`keras_cnnkit.cli._exit`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    loud = args.verbose or getattr(args, "debug", False)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return _exit.USAGE
    library_logger = logging.getLogger("keras_cnnkit")
    level = library_logger.level
    if getattr(args, "quiet", False):  # -q: no per-file or per-epoch INFO lines
        library_logger.setLevel(logging.WARNING)
    try:
        check = getattr(args, "check", None)
        if check is not None:  # the command's cheap checks, before Keras loads
            check(args)
        if getattr(args, "backend", True):
            _backend.load(quiet=not loud)
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - one map for every command
        return _exit.report(args.command, exc, debug=getattr(args, "debug", False))
    finally:
        library_logger.setLevel(level)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
