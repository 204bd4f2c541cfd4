"""``cnnkit data-worker``: a tf.data service worker (or dispatcher) for remote preprocessing."""

from __future__ import annotations

import argparse

from keras_cnnkit.cli._common import add_debug


def register(subparsers) -> None:
    """Add the ``data-worker`` command.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "data-worker",
        help="run a tf.data service worker that preprocesses training data for a dispatcher",
        description=(
            "Serve the tf.data service: run input pipelines (read, decode, resize, augment, "
            "batch) for the training runs whose configuration sets data.service to the "
            "dispatcher's address. With --dispatcher-only, start the dispatcher itself, "
            "listening on the port of --dispatcher. Runs until killed."
        ),
    )
    p.add_argument(
        "--dispatcher", required=True, metavar="HOST:PORT", help="the dispatcher's address"
    )
    p.add_argument(
        "--dispatcher-only", action="store_true", help="start the dispatcher, not a worker"
    )
    p.add_argument("--port", type=int, default=0, help="this worker's port (default: any free)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address the training process reaches this worker at (default 127.0.0.1)",
    )
    add_debug(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until killed."""
    from keras_cnnkit.data import run_data_service

    run_data_service(
        args.dispatcher,
        role="dispatcher" if args.dispatcher_only else "worker",
        port=args.port,
        host=args.host,
        ready=lambda address: print(f"serving at {address}", flush=True),
    )
    return 0
