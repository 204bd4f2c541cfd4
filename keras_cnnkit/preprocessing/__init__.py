"""Image pipelines: folders, file lists or arrays to fast, correct ``tf.data`` batches.

Files are checked up front (header, pixel limit, full read) so that a broken file is
reported by name, never found mid-epoch; decoding and resizing then run in parallel
in ``tf.data``. Augmentation uses seeded Keras preprocessing layers, normalization
the presets of :mod:`keras_cnnkit.layers`, and :class:`ImagePreprocessing` puts the
same resize and normalization inside a model.
"""

from keras_cnnkit.datasets.image_folder import IMAGE_EXTENSIONS
from keras_cnnkit.preprocessing.augment import AUGMENTATIONS, make_augmentation
from keras_cnnkit.preprocessing.decode import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_FORMATS,
    ImageInfo,
    decode_image_file,
    inspect_image,
)
from keras_cnnkit.preprocessing.layers import INTERPOLATIONS, RESIZE_MODES, ImagePreprocessing
from keras_cnnkit.preprocessing.pipeline import (
    compute_mean_std,
    from_arrays,
    from_directory,
    from_files,
    in_validation,
)
from keras_cnnkit.preprocessing.report import SkippedItem, SkipReport

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
