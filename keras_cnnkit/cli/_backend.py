"""Loading Keras (and TensorFlow) for a command, without their native log lines.

TensorFlow's C++ libraries write lines such as ``I0000 ... port.cc:153] oneDNN custom
operations are on`` or ``E0000 ... cuInit`` straight to the process's stderr while they
load and probe the devices, before any Python setting can stop them. Unless the user
asked for ``-v`` or ``--debug``, the command line loads them with stderr pointed at the
null device, then restores it: only the command's own output reaches the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at the null device for the duration of the block."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (tests, notebooks)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def load(*, quiet: bool) -> None:
    """Import Keras and its backend (and probe the devices) before a command runs.

    Args:
        quiet: Drop the native libraries' log lines and TensorFlow's Python INFO and
            WARNING lines.
    """
    if quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        for name in ("tensorflow", "absl", "jax"):
            logging.getLogger(name).setLevel(logging.ERROR)
    if "keras" in sys.modules and not quiet:
        return
    with native_stderr_silenced() if quiet else contextlib.nullcontext():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # the device probe logs here (cuInit...)
