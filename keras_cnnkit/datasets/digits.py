"""Handwritten digits placed on a larger canvas: a small, offline translation-invariance task."""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_cnnkit._optional import require


@dataclasses.dataclass(frozen=True)
class DigitsCanvas:
    """Train and test digits, each centered on a blank canvas.

    Attributes:
        x_train: ``uint8`` images ``(n, canvas, canvas, 1)``.
        y_train: Labels ``(n,)``.
        x_test: Test images, centered like the training ones.
        y_test: Test labels.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_canvas(
    *, canvas_size: int = 32, digit_size: int = 16, test_fraction: float = 0.25, seed: int = 0
) -> DigitsCanvas:
    """Scikit-learn's 1,797 handwritten digits, enlarged and centered on a canvas.

    The digits ship inside scikit-learn's wheel, so this needs no network. Each
    8x8 digit (values 0..16) is enlarged to ``digit_size`` pixels, scaled to
    0..255 and placed at the center of a black ``canvas_size`` square, so shifting
    it by up to ``(canvas_size - digit_size) / 2`` pixels keeps it whole.

    Args:
        canvas_size: Side of the canvas in pixels.
        digit_size: Side of the enlarged digit (a multiple of 8 keeps it sharp).
        test_fraction: Fraction held out for testing (a seeded, stratified-free split).
        seed: Seed of the split.

    Returns:
        A :class:`DigitsCanvas`.

    Raises:
        MissingDependencyError: If scikit-learn is not installed (``keras-cnnkit[demo]``).

    Example:
        >>> data = load_digits_canvas()
        >>> data.x_train.shape[1:]
        (32, 32, 1)
    """
    datasets = require("sklearn.datasets", extra="demo")
    digits = datasets.load_digits()
    images = digits.images.astype(np.float32) / 16.0 * 255.0
    factor = max(1, digit_size // 8)
    images = images.repeat(factor, axis=1).repeat(factor, axis=2)
    size = images.shape[1]
    offset = (canvas_size - size) // 2
    canvas = np.zeros((len(images), canvas_size, canvas_size, 1), np.uint8)
    canvas[:, offset : offset + size, offset : offset + size, 0] = np.round(images).astype(np.uint8)
    labels = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(test_fraction * len(labels)))
    test, train = order[:n_test], order[n_test:]
    return DigitsCanvas(canvas[train], labels[train], canvas[test], labels[test])
