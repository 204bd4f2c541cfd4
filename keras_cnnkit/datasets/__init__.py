"""Small in-memory data sets: image-folder trees and the offline digits canvas."""

from keras_cnnkit.datasets.digits import DigitsCanvas, load_digits_canvas
from keras_cnnkit.datasets.image_folder import (
    IMAGE_EXTENSIONS,
    ImageFolderData,
    extract_archive,
    load_image_folder,
)

__all__ = [
    "DigitsCanvas",
    "IMAGE_EXTENSIONS",
    "ImageFolderData",
    "extract_archive",
    "load_digits_canvas",
    "load_image_folder",
]
