import warnings

import pytest

from keras_cnnkit._deprecation import (
    KerasCnnkitDeprecationWarning,
    deprecated,
    deprecated_argument,
    warn_deprecated,
)
from keras_cnnkit.errors import ConfigError


def test_deprecated_function_warns_and_still_works():
    @deprecated(since="0.1.0", alternative="new_add")
    def old_add(a, b=1):
        """Add."""
        return a + b

    with pytest.warns(KerasCnnkitDeprecationWarning, match=r"old_add is deprecated since 0\.1\.0"):
        assert old_add(2, b=3) == 5
    assert old_add.__deprecated__ == {"since": "0.1.0", "removed_in": "0.2.0"}
    assert old_add.__doc__ == "Add."
    assert issubclass(KerasCnnkitDeprecationWarning, FutureWarning)


def test_deprecated_class_warns_on_construction():
    @deprecated(since="0.3.0", removed_in="1.0.0")
    class Old:
        def __init__(self, x):
            self.x = x

    with pytest.warns(KerasCnnkitDeprecationWarning, match="removed in 1.0.0"):
        assert Old(4).x == 4


def test_deprecated_argument_renames_and_rejects_both():
    @deprecated_argument("nb_filters", "filters", since="0.1.0")
    def block(filters=32):
        return filters

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert block(filters=8) == 8  # the new name does not warn
    with pytest.warns(KerasCnnkitDeprecationWarning, match="'filters'") as caught:
        assert block(nb_filters=16) == 16
    assert caught[0].filename == __file__
    with pytest.warns(KerasCnnkitDeprecationWarning), pytest.raises(TypeError, match="both"):
        block(nb_filters=16, filters=8)
    assert block.__deprecated_arguments__["nb_filters"]["removed_in"] == "0.2.0"


def test_warning_points_at_the_caller():
    with pytest.warns(KerasCnnkitDeprecationWarning) as caught:
        warn_deprecated("thing", since="0.1.0", stacklevel=1)
    assert caught[0].filename == __file__


def test_bad_removal_version_is_rejected():
    with pytest.raises(ConfigError, match="removed_in"):
        deprecated(since="0.1.0", removed_in="soon")(lambda: None)


def test_decorated_call_warning_points_at_the_caller():
    @deprecated(since="0.1.0")
    def old():
        return 1

    with pytest.warns(KerasCnnkitDeprecationWarning) as caught:
        old()
    assert caught[0].filename == __file__
