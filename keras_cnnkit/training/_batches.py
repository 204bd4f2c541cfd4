"""In-memory image batches with alternating flips and random shifts, for every backend."""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_cnnkit.errors import DataError


class FlipShiftBatches(keras.utils.PyDataset):
    """Batches of in-memory images: shuffled, alternately flipped and randomly shifted.

    Alternating flips (airbench): in the first epoch a random half of the images is
    mirrored; in every later epoch each image is mirrored exactly when it was not in
    the epoch before, so every two epochs show both orientations of every image.
    Shifts: each epoch, each image is moved by up to ``translate`` pixels in both
    directions, the uncovered border reflected. The arrays stay ``uint8``; NumPy
    does the work, so the batches feed ``fit`` on any Keras backend.

    Args:
        x: Images ``(n, height, width, channels)``.
        y: Integer labels ``(n,)``, or ``None``.
        batch_size: Batch size.
        translate: Largest shift in pixels (0: none).
        flip: Flip horizontally.
        alternate: With ``flip``, alternate the flips (``False``: a new random half
            of the images every epoch).
        shuffle: Shuffle every epoch.
        seed: Seed of shuffling, flips and shifts.

    Raises:
        DataError: If the arrays do not have matching lengths or are not images.

    Example:
        >>> x = np.arange(4 * 4 * 4 * 1, dtype="uint8").reshape(4, 4, 4, 1)
        >>> batches = FlipShiftBatches(x, np.arange(4), batch_size=3, translate=1)
        >>> len(batches), batches[1][0].shape
        (2, (1, 4, 4, 1))
    """

    def __init__(
        self,
        x,
        y=None,
        *,
        batch_size: int,
        translate: int = 0,
        flip: bool = False,
        alternate: bool = True,
        shuffle: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        self.x = np.asarray(x)
        if self.x.ndim != 4 or not len(self.x):
            raise DataError(
                f"x must be (n, height, width, channels) images, n > 0; got shape {self.x.shape}"
            )
        self.y = None if y is None else np.asarray(y).reshape(-1).astype("int32")
        if self.y is not None and len(self.y) != len(self.x):
            raise DataError(f"x and y differ in length: {len(self.x)} images, {len(self.y)} labels")
        self.batch_size = int(batch_size)
        self.translate = int(translate)
        self.flip = bool(flip)
        self.alternate = bool(alternate)
        self.shuffle = bool(shuffle)
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        self._flipped = None
        self._prepare()

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.x) / self.batch_size))

    def _prepare(self) -> None:
        n = len(self.x)
        self.order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        if self.flip:
            if self._flipped is None or not self.alternate:
                self._flipped = self.rng.random(n) < 0.5
            else:
                self._flipped = ~self._flipped
        if self.translate:
            self.shifts = self.rng.integers(-self.translate, self.translate + 1, size=(n, 2))

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._prepare()

    def _augment(self, index: np.ndarray) -> np.ndarray:
        images = self.x[index]
        if self.flip:
            mirror = self._flipped[index]
            images = np.where(mirror[:, None, None, None], images[:, :, ::-1], images)
        if self.translate:
            r = self.translate
            h, w = images.shape[1:3]
            padded = np.pad(images, ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect")
            dy = self.shifts[index, 0] + r
            dx = self.shifts[index, 1] + r
            rows = dy[:, None] + np.arange(h)[None, :]
            cols = dx[:, None] + np.arange(w)[None, :]
            batch = np.arange(len(index))[:, None, None]
            images = padded[batch, rows[:, :, None], cols[:, None, :]]
        return images

    def __getitem__(self, i: int):
        index = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        images = self._augment(index)
        if self.y is None:
            return (images,)
        return images, self.y[index]
