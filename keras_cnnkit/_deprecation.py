"""Deprecation of public names: warn for one minor version, then remove.

A public function, class or argument that is going away keeps working for one more minor
release and warns with :class:`KerasCnnkitDeprecationWarning` (a ``FutureWarning``, so users
see it by default), naming what replaces it and the version that removes it. The public API
snapshot test (``tests/test_public_api.py``) accepts the removal of a name only once it has
been deprecated this way for at least one minor release.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from keras_cnnkit.errors import ConfigError

__all__ = ["KerasCnnkitDeprecationWarning", "deprecated", "deprecated_argument", "warn_deprecated"]

F = TypeVar("F", bound=Callable[..., Any])


class KerasCnnkitDeprecationWarning(FutureWarning):
    """Warns that a keras_cnnkit name or argument will be removed in a later release."""


def _next_minor(version: str) -> str:
    major, minor = (int(part) for part in version.split(".")[:2])
    return f"{major}.{minor + 1}.0"


def _check_version(removed_in: str, name: str) -> str:
    parts = removed_in.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"removed_in for {name!r} must look like '0.3.0', got {removed_in!r}")
    return removed_in


def warn_deprecated(
    name: str,
    *,
    since: str,
    removed_in: str | None = None,
    alternative: str | None = None,
    stacklevel: int = 2,
) -> None:
    """Emit a :class:`KerasCnnkitDeprecationWarning` for ``name``.

    Args:
        name: What is deprecated, as users write it (``"keras_cnnkit.old_function"``).
        since: The version that deprecated it.
        removed_in: The version that removes it; defaults to the minor release after ``since``.
        alternative: What to use instead, if anything.
        stacklevel: Which frame the warning names, counted from the code that calls this
            function: 1 is that line, 2 (the default) its caller, i.e. the user of the
            deprecated function that calls this.

    Raises:
        ConfigError: If ``removed_in`` is not a version number.

    Example:
        >>> import warnings
        >>> from keras_cnnkit._deprecation import warn_deprecated
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_deprecated("old_name", since="0.1.0", alternative="new_name")
        >>> print(caught[0].message)
        old_name is deprecated since 0.1.0 and will be removed in 0.2.0; use new_name instead.
    """
    removed_in = _check_version(removed_in or _next_minor(since), name)
    message = f"{name} is deprecated since {since} and will be removed in {removed_in}"
    message += f"; use {alternative} instead." if alternative else "."
    warnings.warn(message, KerasCnnkitDeprecationWarning, stacklevel=stacklevel + 1)


def deprecated(
    *, since: str, removed_in: str | None = None, alternative: str | None = None
) -> Callable[[F], F]:
    """Decorate a function or class so that using it warns it is deprecated.

    The decorated object records ``__deprecated__ = {"since": ..., "removed_in": ...}``,
    which the public API snapshot reads.

    Args:
        since: The version that deprecated it.
        removed_in: The version that removes it (defaults to the next minor version).
        alternative: What to use instead, if anything.

    Returns:
        A decorator.

    Example:
        >>> from keras_cnnkit._deprecation import deprecated
        >>> @deprecated(since="0.1.0", alternative="keras_cnnkit.conv_stack")
        ... def build(spec):
        ...     return spec
        >>> build.__deprecated__["removed_in"]
        '0.2.0'
    """

    def decorate(obj: F) -> F:
        name = f"{obj.__module__}.{obj.__qualname__}"
        info = {
            "since": since,
            "removed_in": _check_version(removed_in or _next_minor(since), name),
        }
        if inspect.isclass(obj):
            original_init = obj.__init__

            @functools.wraps(original_init)
            def __init__(self, *args, **kwargs):
                warn_deprecated(
                    name, since=since, removed_in=info["removed_in"], alternative=alternative
                )
                original_init(self, *args, **kwargs)

            obj.__init__ = __init__
            obj.__deprecated__ = info
            return obj

        @functools.wraps(obj)
        def wrapper(*args, **kwargs):
            warn_deprecated(
                name, since=since, removed_in=info["removed_in"], alternative=alternative
            )
            return obj(*args, **kwargs)

        wrapper.__deprecated__ = info
        return wrapper  # type: ignore[return-value]

    return decorate


def deprecated_argument(
    old: str,
    new: str | None = None,
    *,
    since: str,
    removed_in: str | None = None,
) -> Callable[[F], F]:
    """Decorate a function whose keyword argument ``old`` is renamed to ``new`` (or dropped).

    Calls that pass ``old`` warn; when ``new`` is given the value is passed on under the new
    name (passing both raises ``TypeError``, as Python does for a duplicated argument).

    Args:
        old: The deprecated keyword argument.
        new: Its replacement, or ``None`` if it is simply going away (its value is dropped).
        since: The version that deprecated it.
        removed_in: The version that removes it (defaults to the next minor version).

    Returns:
        A decorator.

    Example:
        >>> from keras_cnnkit._deprecation import deprecated_argument
        >>> @deprecated_argument("nb_filters", "filters", since="0.1.0")
        ... def block(filters=32):
        ...     return filters
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     block(nb_filters=64)
        64
    """

    def decorate(func: F) -> F:
        name = f"argument {old!r} of {func.__module__}.{func.__qualname__}"
        until = _check_version(removed_in or _next_minor(since), name)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if old in kwargs:
                warn_deprecated(
                    name,
                    since=since,
                    removed_in=until,
                    alternative=repr(new) if new else None,
                )
                value = kwargs.pop(old)
                if new is not None:
                    if new in kwargs:
                        raise TypeError(f"{func.__qualname__}() got both {old!r} and {new!r}")
                    kwargs[new] = value
            return func(*args, **kwargs)

        deprecated_args = dict(getattr(func, "__deprecated_arguments__", {}))
        deprecated_args[old] = {"since": since, "removed_in": until, "new": new}
        wrapper.__deprecated_arguments__ = deprecated_args
        return wrapper  # type: ignore[return-value]

    return decorate
