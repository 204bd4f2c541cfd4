"""Listing image files: folders of class folders, loose folders and file lists, once.

One set of rules for every route: files are picked by extension (any case); hidden
files and folders (a leading ``.``, e.g. ``.DS_Store`` or macOS ``._photo.jpg``) are left
out; links to files are listed; links to folders are followed only when asked, and a
folder already visited (a link loop, or two links to one folder) is entered once; names
that are not valid UTF-8 are kept as they are on disk (read through their bytes).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable, Sequence

from keras_cnnkit.data._inspect import display_path
from keras_cnnkit.errors import DataError

#: File extensions a folder scan picks up (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def is_hidden(name: str) -> bool:
    """Whether a file or folder name is hidden (starts with a dot)."""
    return name.startswith(".")


def is_image_name(name: str) -> bool:
    """Whether ``name`` has one of :data:`IMAGE_EXTENSIONS` (any case) and is not hidden."""
    return not is_hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str | os.PathLike, *, follow_links: bool = False) -> list[str]:
    """Every image file under ``folder``, recursively, in sorted order.

    Args:
        folder: The folder.
        follow_links: Enter links to folders (each real folder once, so a link loop
            cannot repeat files).

    Returns:
        The paths (``str``; names that are not UTF-8 keep their bytes as surrogate
        escapes, which ``open`` and :func:`os.fsencode` accept).

    Example:
        >>> import os, tempfile
        >>> root = tempfile.mkdtemp()
        >>> for name in ("b.PNG", "a.jpg", ".hidden.jpg", "notes.txt"):
        ...     open(os.path.join(root, name), "wb").close()
        >>> [os.path.basename(p) for p in list_images(root)]
        ['a.jpg', 'b.PNG']
    """
    root = os.fspath(folder)
    seen: set[tuple[int, int]] = set()
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_links):
        try:
            st = os.stat(dirpath)
            key = (st.st_dev, st.st_ino)
        except OSError:
            dirnames[:] = []
            continue
        if key in seen:  # a loop, or a second link to a folder already listed
            dirnames[:] = []
            continue
        seen.add(key)
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if is_image_name(f)]
    return found


def class_folders(
    root: str | os.PathLike, class_names: Sequence[str] | None, where: str
) -> list[str]:
    """The class folders of ``root``: ``class_names`` checked, or every visible sub-folder, sorted.

    Args:
        root: The folder of class folders.
        class_names: The wanted classes in label order, or ``None`` for all.
        where: The caller's name, for messages.

    Returns:
        The class names, in label order.

    Raises:
        DataError: If ``root`` is not a folder, a named class folder is missing, or
            there is none.
    """
    root_path = pathlib.Path(root)
    if not root_path.is_dir():
        raise DataError(f"{where}: {display_path(root_path)} is not a folder")
    available = sorted(p.name for p in root_path.iterdir() if p.is_dir() and not is_hidden(p.name))
    if class_names is None:
        names = available
    else:
        names = [str(c) for c in class_names]
        missing = [c for c in names if c not in available]
        if missing:
            raise DataError(
                f"{where}: class folder(s) {[display_path(m) for m in missing]} not found in "
                f"{display_path(root_path)}; found {[display_path(a) for a in available]}"
            )
    if not names:
        raise DataError(
            f"{where}: {display_path(root_path)} has no class folders: expected "
            f"{display_path(root_path)}/<class>/<image files>"
        )
    return names


def expand_inputs(inputs: Iterable[str | os.PathLike], where: str) -> list[str]:
    """Files and folders (listed recursively) to one list of image files, in order.

    Args:
        inputs: Image files and folders.
        where: The caller's name, for messages.

    Returns:
        The files.

    Raises:
        DataError: If an input does not exist or a folder holds no image files.
    """
    files: list[str] = []
    for item in inputs:
        path = os.fspath(item)
        if os.path.isdir(path):
            found = list_images(path)
            if not found:
                raise DataError(
                    f"{where}: folder {display_path(path)} holds no image files "
                    f"({', '.join(IMAGE_EXTENSIONS)})"
                )
            files += found
        elif os.path.exists(path) or os.path.islink(path):
            files.append(path)
        else:
            raise DataError(f"{where}: image or folder not found: {display_path(path)}")
    return files
