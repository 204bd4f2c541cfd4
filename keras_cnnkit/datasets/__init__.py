"""Small in-memory data sets: the offline digits canvas.

The image-folder loader moved to :mod:`keras_cnnkit.data` (``load_image_folder``,
``ImageFolderData``, ``extract_archive``, ``IMAGE_EXTENSIONS`` still resolve here, with a
deprecation warning).
"""

from keras_cnnkit.data._moved import moved
from keras_cnnkit.datasets.digits import DigitsCanvas, load_digits_canvas

_MOVED = ["IMAGE_EXTENSIONS", "ImageFolderData", "extract_archive", "load_image_folder"]

__all__ = [
    "DigitsCanvas",
    "IMAGE_EXTENSIONS",
    "ImageFolderData",
    "extract_archive",
    "load_digits_canvas",
    "load_image_folder",
]

__getattr__ = moved(__name__, _MOVED)
