"""Translation invariance, measured: accuracy of a model on shifted images."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterable, Mapping

import numpy as np

from keras_cnnkit._optional import require
from keras_cnnkit.errors import DataError


def shift_images(x: np.ndarray, dx: int, dy: int, fill: float = 0) -> np.ndarray:
    """Shift a batch of images by ``dx`` pixels right and ``dy`` pixels down.

    Pixels shifted out are dropped (no wrap-around); uncovered pixels get ``fill``.

    Args:
        x: Images ``(n, height, width, channels)``.
        dx: Horizontal shift (positive moves content right).
        dy: Vertical shift (positive moves content down).
        fill: Value of the uncovered pixels.

    Returns:
        The shifted copy, same shape and dtype.

    Example:
        >>> import numpy as np
        >>> x = np.arange(9).reshape(1, 3, 3, 1)
        >>> shift_images(x, 1, 0)[0, :, :, 0].tolist()
        [[0, 0, 1], [0, 3, 4], [0, 6, 7]]
    """
    x = np.asarray(x)
    out = np.full_like(x, fill)
    h, w = x.shape[1:3]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    src_y = slice(max(0, -dy), h - max(0, dy))
    dst_y = slice(max(0, dy), h - max(0, -dy))
    src_x = slice(max(0, -dx), w - max(0, dx))
    dst_x = slice(max(0, dx), w - max(0, -dx))
    out[:, dst_y, dst_x] = x[:, src_y, src_x]
    return out


@dataclasses.dataclass(frozen=True)
class ShiftRobustness:
    """Accuracy of one model at each shift.

    Attributes:
        shifts: The ``(dx, dy)`` shifts evaluated.
        accuracy: Accuracy at each shift, in the same order.
    """

    shifts: tuple[tuple[int, int], ...]
    accuracy: tuple[float, ...]

    @property
    def centered(self) -> float:
        """Accuracy without a shift (``nan`` if ``(0, 0)`` was not evaluated)."""
        return dict(zip(self.shifts, self.accuracy)).get((0, 0), float("nan"))

    @property
    def shifted_mean(self) -> float:
        """Mean accuracy over the non-zero shifts."""
        values = [a for s, a in zip(self.shifts, self.accuracy) if s != (0, 0)]
        return float(np.mean(values)) if values else float("nan")

    @property
    def worst(self) -> float:
        """Lowest accuracy over all shifts."""
        return float(min(self.accuracy))

    def rows(self) -> list[dict]:
        """One ``{"dx", "dy", "accuracy"}`` dict per shift."""
        return [
            {"dx": dx, "dy": dy, "accuracy": acc}
            for (dx, dy), acc in zip(self.shifts, self.accuracy)
        ]

    def grid(self) -> tuple[list[int], list[int], np.ndarray]:
        """The accuracies as a ``(dy, dx)`` grid, ``nan`` where not evaluated.

        Returns:
            ``(dxs, dys, grid)`` with ``grid[i, j]`` the accuracy at ``(dxs[j], dys[i])``.
        """
        dxs = sorted({dx for dx, _ in self.shifts})
        dys = sorted({dy for _, dy in self.shifts})
        grid = np.full((len(dys), len(dxs)), np.nan)
        for (dx, dy), acc in zip(self.shifts, self.accuracy):
            grid[dys.index(dy), dxs.index(dx)] = acc
        return dxs, dys, grid

    def to_markdown(self) -> str:
        """A Markdown table: one row per vertical shift, one column per horizontal shift."""
        dxs, dys, grid = self.grid()
        lines = ["| dy \\ dx | " + " | ".join(f"{dx:+d}" for dx in dxs) + " |"]
        lines.append("|---:|" + "---:|" * len(dxs))
        for dy, row in zip(dys, grid):
            cells = " | ".join("" if np.isnan(a) else f"{a:.3f}" for a in row)
            lines.append(f"| {dy:+d} | {cells} |")
        return "\n".join(lines)


def _resolve_shifts(shifts) -> list[tuple[int, int]]:
    if isinstance(shifts, (int, np.integer)):
        values = list(range(-int(shifts), int(shifts) + 1))
        return [(dx, dy) for dy in values for dx in values]
    shifts = list(shifts)
    if not shifts:
        raise DataError("shifts is empty")
    if all(isinstance(s, (int, np.integer)) for s in shifts):
        return [(int(dx), int(dy)) for dy in shifts for dx in shifts]
    pairs = []
    for s in shifts:
        if len(s) != 2:
            raise DataError(f"each shift must be a (dx, dy) pair, got {s!r}")
        pairs.append((int(s[0]), int(s[1])))
    return pairs


def shift_robustness(
    model,
    x: np.ndarray,
    y: np.ndarray,
    shifts: int | Iterable[int] | Iterable[tuple[int, int]] = 4,
    *,
    fill: float = 0,
    batch_size: int = 256,
) -> ShiftRobustness:
    """Accuracy of ``model`` on ``(x, y)`` shifted by each ``(dx, dy)``.

    A dense network that saw only centered objects fails when the object moves; a
    convolutional network with global pooling finds the same pattern wherever it
    sits. This function measures how much a given model keeps its accuracy.

    Args:
        model: A Keras model (or anything with ``predict(x, verbose=0)``) returning
            class scores.
        x: Images ``(n, height, width, channels)``, as the model takes them.
        y: Integer labels ``(n,)``.
        shifts: An int ``r`` (every shift in ``-r..r`` on both axes), a list of
            offsets (their grid), or a list of ``(dx, dy)`` pairs.
        fill: Value of the pixels uncovered by a shift (the background).
        batch_size: Prediction batch size.

    Returns:
        A :class:`ShiftRobustness` (with ``to_markdown()`` and, through
        :func:`plot_shift_heatmaps`, a heatmap).

    Raises:
        DataError: If ``x`` is not 4-D or ``x`` and ``y`` differ in length.

    Example:
        >>> import keras, numpy as np
        >>> from keras_cnnkit import conv_stack
        >>> model = conv_stack({"stages": [4]}, input_shape=(8, 8, 1), num_classes=2)
        >>> x, y = np.zeros((4, 8, 8, 1), "uint8"), np.array([0, 1, 0, 1])
        >>> result = shift_robustness(model, x, y, shifts=[(0, 0), (2, 0)])
        >>> len(result.accuracy)
        2
    """
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    if x.ndim != 4:
        raise DataError(f"x must be 4-D (n, height, width, channels), got shape {x.shape}")
    if len(x) != len(y):
        raise DataError(f"x and y differ in length: {len(x)} images, {len(y)} labels")
    pairs = _resolve_shifts(shifts)
    accuracy = []
    for dx, dy in pairs:
        probs = np.asarray(
            model.predict(shift_images(x, dx, dy, fill), batch_size=batch_size, verbose=0)
        )
        accuracy.append(float(np.mean(probs.argmax(-1) == y)))
    return ShiftRobustness(tuple(pairs), tuple(accuracy))


def plot_shift_heatmaps(
    results: Mapping[str, ShiftRobustness] | ShiftRobustness,
    path: str | pathlib.Path,
    *,
    title: str | None = None,
) -> pathlib.Path:
    """Draw one accuracy heatmap per model, side by side, to a PNG file.

    Args:
        results: A :class:`ShiftRobustness`, or a mapping of model name to one.
        path: Where to write the PNG.
        title: Figure title.

    Returns:
        The path written.

    Raises:
        MissingDependencyError: If matplotlib is not installed (``keras-cnnkit[plot]``).
    """
    require("matplotlib", extra="plot").use("Agg")
    plt = require("matplotlib.pyplot", extra="plot")
    if isinstance(results, ShiftRobustness):
        results = {"model": results}
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.0), squeeze=False)
    image = None
    for ax, (name, result) in zip(axes[0], results.items()):
        dxs, dys, grid = result.grid()
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", origin="upper")
        ax.set_xticks(range(len(dxs)), [str(d) for d in dxs])
        ax.set_yticks(range(len(dys)), [str(d) for d in dys])
        ax.set_xlabel("shift dx (pixels)")
        ax.set_ylabel("shift dy (pixels)")
        ax.set_title(f"{name}\ncentered {result.centered:.2f}, shifted {result.shifted_mean:.2f}")
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="accuracy")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary_table(results: Mapping[str, ShiftRobustness]) -> str:
    """A Markdown table of several models' centered, shifted-mean and worst accuracy.

    Args:
        results: Model name to :class:`ShiftRobustness`.

    Returns:
        The table.
    """
    lines = ["| model | centered | shifted (mean) | worst shift |", "|---|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r.centered:.3f} | {r.shifted_mean:.3f} | {r.worst:.3f} |")
    return "\n".join(lines)
