"""Model I/O: atomic checksummed saving, serving exports and Google Cloud Storage transfers.

Every function accepts local paths and ``gs://`` URIs. Google Cloud Storage support
needs the ``gcs`` extra (``pip install 'keras-cnnkit[gcs]'``), imported only when a
``gs://`` URI is used.
"""

from keras_cnnkit.io.export import BYTES_SIGNATURE, IMAGES_SIGNATURE, export
from keras_cnnkit.io.gcs import GCSOptions, TransferResult, delete, download, upload
from keras_cnnkit.io.metadata import ModelMetadata
from keras_cnnkit.io.saving import LoadedModel, load, load_weights, save, save_weights

__all__ = [
    "BYTES_SIGNATURE",
    "GCSOptions",
    "IMAGES_SIGNATURE",
    "LoadedModel",
    "ModelMetadata",
    "TransferResult",
    "delete",
    "download",
    "export",
    "load",
    "load_weights",
    "save",
    "save_weights",
    "upload",
]
