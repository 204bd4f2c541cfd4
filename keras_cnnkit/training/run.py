"""Deprecated location of the training-run functions; use :mod:`keras_cnnkit.training`.

``keras_cnnkit.training.run.train`` and ``TrainResult`` moved to
:func:`keras_cnnkit.training.train` and :class:`keras_cnnkit.training.TrainResult`;
``process_shard`` to :func:`keras_cnnkit.training.distribute.process_shard`. The names
still work here, with a :class:`~keras_cnnkit._deprecation.KerasCnnkitDeprecationWarning`.
"""

from __future__ import annotations

import importlib

from keras_cnnkit._deprecation import warn_deprecated

#: Old name -> (module that holds it now, what users should write).
_MOVED = {
    "train": ("keras_cnnkit.training._run", "keras_cnnkit.training.train"),
    "TrainResult": ("keras_cnnkit.training._run", "keras_cnnkit.training.TrainResult"),
    "load_data": ("keras_cnnkit.training._data", "keras_cnnkit.training.train"),
    "process_shard": (
        "keras_cnnkit.training.distribute",
        "keras_cnnkit.training.distribute.process_shard",
    ),
    "build_recipe": ("keras_cnnkit.training._build", "keras_cnnkit.training.train"),
    "compile_recipe": ("keras_cnnkit.training._build", "keras_cnnkit.training.train"),
    "train_dataset": ("keras_cnnkit.training._data", "keras_cnnkit.training.train"),
    "history_csv": ("keras_cnnkit.training._outputs", "keras_cnnkit.training.train"),
    "plot_history": ("keras_cnnkit.training._outputs", "keras_cnnkit.training.train"),
    "OUTPUT_FILES": ("keras_cnnkit.training._outputs", "keras_cnnkit.training.train"),
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, alternative = _MOVED[name]
    warn_deprecated(
        f"keras_cnnkit.training.run.{name}", since="0.2.0", alternative=alternative, stacklevel=2
    )
    return getattr(importlib.import_module(module), name)
