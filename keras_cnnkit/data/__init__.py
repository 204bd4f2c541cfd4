"""One data path: image files, folders or arrays to the pixels a model takes.

Everything that turns an image file into model input goes through this package, once:

* **listing** folders and file lists (:func:`list_images`, :data:`IMAGE_EXTENSIONS`);
* **decoding and resizing** one image with TensorFlow ops (format sniffing, colour mode,
  16-bit scaling, EXIF orientation, pixel limit, resize mode, interpolation, antialias),
  the same ops in the ``tf.data`` pipelines (:func:`from_directory`, :func:`from_files`),
  in the Python reader (:func:`read_image`, used by ``cnnkit predict`` and
  :func:`load_image_folder`) and in the exported ``serving_bytes`` signature, so that a
  file gives the same pixels on every route;
* **the split** (:func:`split_indices`, :func:`in_validation`): seeded and stable, for
  folders, file lists, arrays and ``.npz``;
* **errors**: every bad file becomes an :class:`~keras_cnnkit.errors.ImageDecodeError`
  naming it, or an entry of a :class:`SkipReport`;
* **what a model expects** (:func:`data_config`), which the pipelines take as
  ``data_config=model``.

Pipelines give raw pixels (0..255); normalization belongs inside the model.
"""

from keras_cnnkit.data._augment import AUGMENTATIONS, make_augmentation
from keras_cnnkit.data._config import DataConfig, data_config
from keras_cnnkit.data._decode import decode_and_resize, decode_image, resize_image
from keras_cnnkit.data._folder import ImageFolderData, extract_archive, load_image_folder
from keras_cnnkit.data._inspect import DEFAULT_MAX_PIXELS, SUPPORTED_FORMATS, ImageInfo
from keras_cnnkit.data._layers import INTERPOLATIONS, RESIZE_MODES, ImagePreprocessing
from keras_cnnkit.data._listing import IMAGE_EXTENSIONS, expand_inputs, list_images
from keras_cnnkit.data._pack import PackResult, pack
from keras_cnnkit.data._pipeline import compute_mean_std, from_arrays, from_directory, from_files
from keras_cnnkit.data._read import (
    decode_image_file,
    inspect_image,
    read_image,
    read_images,
)
from keras_cnnkit.data._report import SkippedItem, SkipReport
from keras_cnnkit.data._service import run_data_service, through_service
from keras_cnnkit.data._shards import from_shards
from keras_cnnkit.data._split import in_validation, split_indices

__all__ = [
    "AUGMENTATIONS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "INTERPOLATIONS",
    "RESIZE_MODES",
    "SUPPORTED_FORMATS",
    "DataConfig",
    "ImageFolderData",
    "ImageInfo",
    "ImagePreprocessing",
    "PackResult",
    "SkipReport",
    "SkippedItem",
    "compute_mean_std",
    "data_config",
    "decode_and_resize",
    "decode_image",
    "decode_image_file",
    "expand_inputs",
    "extract_archive",
    "from_arrays",
    "from_directory",
    "from_files",
    "from_shards",
    "in_validation",
    "inspect_image",
    "list_images",
    "load_image_folder",
    "make_augmentation",
    "pack",
    "read_image",
    "read_images",
    "resize_image",
    "run_data_service",
    "split_indices",
    "through_service",
]
