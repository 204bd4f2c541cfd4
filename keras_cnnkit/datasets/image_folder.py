"""Deprecated: moved to :mod:`keras_cnnkit.data` (names resolve here with a warning)."""

from keras_cnnkit.data._moved import moved

__getattr__ = moved(
    __name__, ["IMAGE_EXTENSIONS", "ImageFolderData", "extract_archive", "load_image_folder"]
)
