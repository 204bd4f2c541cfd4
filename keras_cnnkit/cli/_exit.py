"""The one map from an error to the exit code of ``cnnkit`` and to the line it prints.

Exit codes (the same for every command):

* ``0``: success.
* ``1``: the work failed: a storage error (a file or object that cannot be written,
  read or verified, a destination already present without ``--overwrite``), or an
  unexpected error inside the work (its type is printed; ``--debug`` shows the
  traceback).
* ``2``: a user's mistake: a wrong command line, configuration key or value, missing or
  malformed data or model file, an image that cannot be decoded, a missing optional
  dependency, a precision or distribution this machine cannot run.
* ``130``: interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
import traceback

from keras_cnnkit.errors import CnnkitError, StorageError

#: Exit code of a successful command.
OK = 0
#: Exit code of a failure of the work itself.
FAILURE = 1
#: Exit code of a user's mistake.
USAGE = 2
#: Exit code after Ctrl-C.
INTERRUPTED = 130

#: Library arguments named in error messages, and the flags a command-line user typed.
FLAG_WORDS = {
    "overwrite=True": "--overwrite",
    "verify=False": "--no-verify",
    "safe_mode=False": "--unsafe",
}


def exit_code(exc: BaseException) -> int:
    """The exit code for an error: 2 for a user's mistake, 1 for a failure, 130 for Ctrl-C.

    Args:
        exc: The error a command raised.

    Returns:
        The exit code.
    """
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, CnnkitError) and not isinstance(exc, StorageError):
        return USAGE
    return FAILURE


def report(command: str, exc: BaseException, *, debug: bool = False) -> int:
    """Print the error line of ``cnnkit COMMAND`` (and the traceback with ``debug``).

    Args:
        command: The command's name.
        exc: The error.
        debug: Also print the traceback.

    Returns:
        The exit code, from :func:`exit_code`.
    """
    if isinstance(exc, KeyboardInterrupt):
        print(f"cnnkit {command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    if debug:
        traceback.print_exception(exc)
    text = str(exc) if isinstance(exc, CnnkitError) else f"{type(exc).__name__}: {exc}"
    for argument, flag in FLAG_WORDS.items():
        text = text.replace(argument, flag)
    print(f"cnnkit {command}: error: {text}", file=sys.stderr)
    return exit_code(exc)
