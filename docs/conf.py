"""Sphinx configuration of the keras-cnnkit documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_cnnkit import __version__  # noqa: E402

project = "keras-cnnkit"
author = "keras-cnnkit developers"
copyright = "2026, keras-cnnkit developers"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_mock_imports = ["google.cloud"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields, so a class may appear on a guide page too
autodoc_inherit_docstrings = False  # overridden Keras methods keep their Keras (Markdown) text out
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]
html_theme = "furo"
html_title = f"keras-cnnkit {release}"

# The docstrings' ">>>" examples run as written in their module, whose names they use
# unqualified: the doctest builder (make docs) gives every page the public names of every
# subpackage, then any other name a module of the package defines.
doctest_global_setup = """
import importlib as _importlib
import pkgutil as _pkgutil
import warnings as _warnings

import numpy as np
import keras
import keras_cnnkit as ck
from keras_cnnkit._deprecation import KerasCnnkitDeprecationWarning as _Moved

for _mod in _pkgutil.walk_packages(ck.__path__, "keras_cnnkit."):
    if ".cli" in _mod.name or _mod.name.endswith("__main__"):
        continue
    _module = _importlib.import_module(_mod.name)
    with _warnings.catch_warnings():  # names that moved warn when read; the docs read them all
        _warnings.simplefilter("ignore", _Moved)
        for _name in getattr(_module, "__all__", None) or []:
            globals()[_name] = getattr(_module, _name)
        for _name in dir(_module):
            if not _name.startswith("_"):
                globals().setdefault(_name, getattr(_module, _name))
"""
