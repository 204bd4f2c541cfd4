"""Load a small image-folder tree (``root/<class>/*.jpg``) into arrays."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import tarfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from keras_cnnkit.errors import DataError, ImageDecodeError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclasses.dataclass(frozen=True)
class ImageFolderData:
    """Images and labels loaded by :func:`load_image_folder`.

    Attributes:
        x: ``uint8`` images ``(n, height, width, channels)``.
        y: ``int32`` labels ``(n,)``, indices into ``class_names``.
        class_names: Class folder names, sorted.
        paths: The file of each image, in the same order.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    paths: tuple[str, ...]

    def split(
        self, validation: int | float, seed: int = 0
    ) -> tuple[ImageFolderData, ImageFolderData]:
        """Split off a seeded validation set: the last ``validation`` items of a permutation.

        Args:
            validation: Number of validation images, or a fraction of all images.
            seed: Seed of the permutation (the same seed gives the same split).

        Returns:
            ``(train, validation)``.

        Raises:
            DataError: If the split leaves either part empty.
        """
        n = len(self.y)
        k = int(round(validation * n)) if isinstance(validation, float) else int(validation)
        if not 0 < k < n:
            raise DataError(f"validation={validation!r} leaves an empty split of {n} images")
        order = np.random.default_rng(seed).permutation(n)
        return self._take(order[: n - k]), self._take(order[n - k :])

    def _take(self, idx: np.ndarray) -> ImageFolderData:
        return ImageFolderData(
            self.x[idx], self.y[idx], self.class_names, tuple(self.paths[i] for i in idx)
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


def _read(path: pathlib.Path, size: tuple[int, int] | None, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"cannot decode image {path}: {exc}") from exc
    return arr[..., None] if arr.ndim == 2 else arr


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
) -> ImageFolderData:
    """Load ``root/<class>/<image>`` into ``uint8`` arrays (for small data sets).

    Suited to data sets that fit in memory, such as CIFAR-10 as JPEG files. Files
    are read in sorted order, so the result is the same on every run.

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
        num_workers: Decoding threads (default: the CPU count).

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
        raise DataError(f"image folder not found: {root}")
    if color_mode not in ("rgb", "grayscale"):
        raise DataError(f"color_mode must be 'rgb' or 'grayscale', got {color_mode!r}")
    available = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes is None:
        classes = available
    if not classes:
        raise DataError(f"no class folders in {root}: expected {root}/<class>/<image files>")
    missing = [c for c in classes if c not in available]
    if missing:
        raise DataError(f"class folders {missing} not found in {root}; found {available}")
    files: list[pathlib.Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        found = sorted(
            p
            for p in (root / name).iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )
        if not found:
            raise DataError(
                f"class folder {root / name} has no image files ({', '.join(IMAGE_EXTENSIONS)})"
            )
        found = found[:max_per_class] if max_per_class else found
        files.extend(found)
        labels.extend([label] * len(found))
    mode = "RGB" if color_mode == "rgb" else "L"
    with ThreadPoolExecutor(num_workers or os.cpu_count() or 1) as pool:
        images = list(pool.map(lambda p: _read(p, image_size, mode), files))
    shapes = {img.shape for img in images}
    if len(shapes) > 1:
        first = images[0].shape
        odd = next(f for f, img in zip(files, images) if img.shape != first)
        raise DataError(
            f"images differ in size ({files[0]} is {first[:2]}, {odd} is "
            f"{next(i.shape for i in images if i.shape != first)[:2]}); pass image_size=(h, w)"
        )
    return ImageFolderData(
        np.stack(images),
        np.asarray(labels, dtype=np.int32),
        tuple(classes),
        tuple(str(f) for f in files),
    )
