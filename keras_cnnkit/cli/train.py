"""``cnnkit train``: train as a TOML configuration says, resuming a killed run."""

from __future__ import annotations

import argparse

from keras_cnnkit.cli._common import add_debug


def register(subparsers) -> None:
    """Add the ``train`` command.

    Args:
        subparsers: The object returned by ``ArgumentParser.add_subparsers``.
    """
    p = subparsers.add_parser(
        "train",
        help="train a model from a TOML configuration (resumes a killed run)",
        description=(
            "Train as CONFIG (a TOML file) says and write the final and best models, the "
            "history, the resolved configuration and the training curves to output.dir. "
            "Running the same command again after an interruption resumes the run."
        ),
    )
    p.add_argument("config", help="the run configuration (.toml)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a configuration value (repeatable), e.g. --set training.epochs=3",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress lines")
    add_debug(p)
    p.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    """Read and check the configuration (without Keras: a mistake is reported at once)."""
    from keras_cnnkit.training.config import load_config

    args.run_config = load_config(args.config, args.overrides)


def run(args: argparse.Namespace) -> int:
    """Train and print the run's summary."""
    from keras_cnnkit.training import train

    config = getattr(args, "run_config", None) or args.config
    overrides = () if getattr(args, "run_config", None) else args.overrides
    result = train(config, overrides, verbose=0 if args.quiet else 2)
    print(result.summary())
    return 0
