"""The package version, kept in one place (read by hatchling and ``keras_cnnkit.__version__``)."""

__version__ = "0.1.0"
