"""Deprecated: the image pipelines moved to :mod:`keras_cnnkit.data`.

Every name still resolves here, with a
:class:`~keras_cnnkit._deprecation.KerasCnnkitDeprecationWarning` naming its new home.
"""

from keras_cnnkit.data._moved import moved

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "INTERPOLATIONS",
    "RESIZE_MODES",
    "SUPPORTED_FORMATS",
    "ImageInfo",
    "ImagePreprocessing",
    "SkipReport",
    "SkippedItem",
    "compute_mean_std",
    "decode_image_file",
    "from_arrays",
    "from_directory",
    "from_files",
    "in_validation",
    "inspect_image",
    "make_augmentation",
]

__getattr__ = moved(__name__, __all__)
