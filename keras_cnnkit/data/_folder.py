"""Load a small image-folder tree (``root/<class>/*.jpg``) into arrays, as the pipelines read it."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import tarfile
from collections.abc import Sequence

import numpy as np

from keras_cnnkit.data._config import DataConfig
from keras_cnnkit.data._inspect import DEFAULT_MAX_PIXELS, display_path
from keras_cnnkit.data._listing import IMAGE_EXTENSIONS, class_folders, list_images
from keras_cnnkit.data._split import split_indices
from keras_cnnkit.errors import DataError


@dataclasses.dataclass(frozen=True)
class ImageFolderData:
    """Images and labels loaded by :func:`load_image_folder`.

    Attributes:
        x: ``uint8`` images ``(n, height, width, channels)``.
        y: ``int32`` labels ``(n,)``, indices into ``class_names``.
        class_names: Class folder names, sorted.
        paths: The file of each image, in the same order.
        keys: Each file's path relative to the root (the key of the split).
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    keys: tuple[str, ...] = ()

    def split(
        self, validation: int | float, seed: int = 0
    ) -> tuple[ImageFolderData, ImageFolderData]:
        """Split off a seeded, stable validation set (the pipelines' split).

        Each image's side depends only on its path relative to the root and ``seed``
        (:func:`~keras_cnnkit.data.split_indices`): a fraction holds out about that share,
        a count that many images.

        Args:
            validation: A fraction in (0, 1), or a number of validation images.
            seed: Partition seed (the same seed gives the same split).

        Returns:
            ``(train, validation)``.

        Raises:
            DataError: If the split leaves either part empty.
        """
        keys = list(self.keys) if self.keys else list(self.paths)
        train, val = split_indices(keys, validation, seed, where="ImageFolderData.split")
        return self._take(train), self._take(val)

    def _take(self, idx: np.ndarray) -> ImageFolderData:
        return ImageFolderData(
            self.x[idx],
            self.y[idx],
            self.class_names,
            tuple(self.paths[i] for i in idx),
            tuple(self.keys[i] for i in idx) if self.keys else (),
        )


def extract_archive(
    archive: str | os.PathLike, cache_dir: str | os.PathLike | None = None
) -> pathlib.Path:
    """Extract a ``.tar``, ``.tar.gz`` or ``.tgz`` archive once into a cache folder.

    The folder is keyed by the archive's name, size and modification time, and a
    marker file is written last, so an interrupted extraction is redone.

    Args:
        archive: Path of the archive.
        cache_dir: Where to extract (default ``$KERAS_HOME/datasets`` or
            ``~/.keras/datasets``).

    Returns:
        The folder holding the extracted files.

    Raises:
        DataError: If the archive does not exist or is not a tar archive.
    """
    archive = pathlib.Path(archive)
    if not archive.is_file():
        raise DataError(f"archive not found: {archive}")
    if cache_dir is None:
        keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
        cache_dir = os.path.join(keras_home, "datasets")
    stat = archive.stat()
    key = hashlib.sha256(f"{archive.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[
        :12
    ]
    target = pathlib.Path(cache_dir) / f"{archive.name.split('.')[0]}-{key}"
    marker = target / ".complete"
    if not marker.exists():
        target.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
        except tarfile.TarError as exc:
            raise DataError(f"{archive} is not a readable tar archive: {exc}") from exc
        marker.touch()
    return target


def load_image_folder(
    root: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    classes: Sequence[str] | None = None,
    max_per_class: int | None = None,
    color_mode: str = "rgb",
    subdir: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    num_workers: int | None = None,
    resize_mode: str = "stretch",
    interpolation: str = "bilinear",
    antialias: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> ImageFolderData:
    """Load ``root/<class>/<image>`` into ``uint8`` arrays (for small data sets).

    Suited to data sets that fit in memory, such as CIFAR-10 as JPEG files. Files
    are listed, decoded and resized exactly as the pipelines do
    (:func:`~keras_cnnkit.data.from_directory` gives the same pixels), in sorted order,
    so the result is the same on every run.

    Args:
        root: The folder holding one subfolder per class, or a ``.tar``/``.tar.gz``
            archive of it (extracted once into ``cache_dir``).
        image_size: ``(height, width)`` to resize every image to; ``None`` keeps
            the size, which must then be the same for all images.
        classes: Class folder names to load, in label order; default all, sorted.
        max_per_class: Load at most this many images per class (the first, sorted).
        color_mode: ``"rgb"`` (3 channels) or ``"grayscale"`` (1 channel).
        subdir: A folder inside ``root`` (or the archive) holding the class folders.
        cache_dir: Where archives are extracted.
        num_workers: Parallel decode calls (default: as many as help).
        resize_mode: ``"stretch"``, ``"crop"`` or ``"pad"`` (with ``image_size``).
        interpolation: The resizing interpolation.
        antialias: Antialias when downsampling.
        max_pixels: Largest ``width * height`` accepted, or ``None``.

    Returns:
        An :class:`ImageFolderData`.

    Raises:
        DataError: If the root is missing or has no class folders, a class folder
            has no images, or images differ in size with ``image_size=None``.
        ImageDecodeError: If an image file cannot be decoded (names the file).

    Example:
        >>> data = load_image_folder("data/train", max_per_class=100)  # doctest: +SKIP
    """
    root = pathlib.Path(root)
    if root.is_file() and root.name.endswith((".tar", ".tar.gz", ".tgz")):
        root = extract_archive(root, cache_dir)
    if subdir:
        root = root / subdir
    if not root.is_dir():
        raise DataError(f"image folder not found: {display_path(root)}")
    if color_mode not in ("rgb", "grayscale"):
        raise DataError(f"color_mode must be 'rgb' or 'grayscale', got {color_mode!r}")
    classes = class_folders(root, classes, "load_image_folder")
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = list_images(root / name)
        if not found:
            raise DataError(
                f"class folder {display_path(root / name)} has no image files "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
        found = found[:max_per_class] if max_per_class else found
        files.extend(found)
        labels.extend([label] * len(found))
    config = DataConfig(
        image_size=None if image_size is None else tuple(image_size),
        color_mode=color_mode,
        resize_mode=resize_mode,
        interpolation=interpolation,
        antialias=antialias,
    )
    from keras_cnnkit.data._pipeline import from_files

    ds = from_files(
        files,
        data_config=config,
        batch_size=None,
        shuffle=False,
        prefetch=False,
        max_pixels=max_pixels,
        num_parallel_calls=num_workers or -1,
    )
    images = list(ds.as_numpy_iterator())
    shapes = {img.shape for img in images}
    if len(shapes) > 1:
        first = images[0].shape
        odd = next(i for i, img in enumerate(images) if img.shape != first)
        raise DataError(
            f"images differ in size ({display_path(files[0])} is {first[:2]}, "
            f"{display_path(files[odd])} is {images[odd].shape[:2]}); pass image_size=(h, w)"
        )
    return ImageFolderData(
        np.stack(images),
        np.asarray(labels, dtype=np.int32),
        tuple(classes),
        tuple(files),
        tuple(os.path.relpath(f, root).replace(os.sep, "/") for f in files),
    )
