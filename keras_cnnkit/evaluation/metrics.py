"""Classification scores from probabilities: confusion matrix, precision, recall, top-k."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from keras_cnnkit.errors import DataError


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Count how often each true class (rows) is predicted as each class (columns).

    Args:
        y_true: Integer labels ``(n,)``.
        y_pred: Predicted integer labels ``(n,)``.
        num_classes: Number of classes.

    Returns:
        An ``int64`` array ``(num_classes, num_classes)``.

    Raises:
        DataError: If the lengths differ or a label is out of range.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2).tolist()
        [[1, 0], [1, 1]]
    """
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    y_pred = np.asarray(y_pred).reshape(-1).astype(np.int64)
    if len(y_true) != len(y_pred):
        raise DataError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise DataError(f"{name} holds labels outside 0..{num_classes - 1}")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def precision_recall(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall from a confusion matrix (0 where undefined).

    Args:
        matrix: A confusion matrix (rows true, columns predicted).

    Returns:
        ``(precision, recall)``, one value per class.

    Example:
        >>> p, r = precision_recall(np.array([[1, 0], [1, 1]]))
        >>> p.tolist(), r.tolist()
        ([0.5, 1.0], [1.0, 0.5])
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    return precision, recall


def top_k_accuracy(y_true, probs, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores.

    Args:
        y_true: Integer labels ``(n,)``.
        probs: Scores ``(n, num_classes)``.
        k: How many top classes count.

    Returns:
        The accuracy in ``[0, 1]``.

    Example:
        >>> top_k_accuracy([2], np.array([[0.5, 0.3, 0.2]]), 2)
        0.0
    """
    y_true = np.asarray(y_true).reshape(-1)
    probs = np.asarray(probs)
    k = min(int(k), probs.shape[-1])
    top = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == y_true[:, None], axis=-1))) if len(y_true) else 0.0


@dataclasses.dataclass
class ClassificationReport:
    """Scores of a classifier on labelled data.

    Attributes:
        class_names: Names of the classes.
        loss: Mean cross-entropy of the probabilities.
        accuracy: Top-1 accuracy.
        top_k: ``k`` of :attr:`top_k_accuracy`, the ``k`` asked for capped at the
            number of classes.
        top_k_accuracy: Top-k accuracy (also under ``top_<k>_accuracy`` in
            :meth:`as_dict`, with the real ``k``).
        precision: Per-class precision.
        recall: Per-class recall.
        confusion: The confusion matrix (rows true, columns predicted).
    """

    class_names: list[str]
    loss: float
    accuracy: float
    top_k: int
    top_k_accuracy: float
    precision: list[float]
    recall: list[float]
    confusion: list[list[int]]
    top_k_requested: int | None = None

    def __post_init__(self):
        if self.top_k_requested is None:
            self.top_k_requested = self.top_k

    @property
    def top_k_capped(self) -> bool:
        """Whether the ``k`` asked for exceeded the number of classes."""
        return self.top_k_requested != self.top_k

    def as_dict(self) -> dict:
        """Plain data (JSON-serializable).

        Besides the fields, ``top_<k>_accuracy`` repeats the top-k accuracy under
        the ``k`` it was computed with, so a capped ``k`` cannot be misread.

        Example:
            >>> r = classification_report([0, 1], np.array([[0.9, 0.1], [0.2, 0.8]]), k=5)
            >>> d = r.as_dict()
            >>> d["top_k_requested"], d["top_k"], d["top_2_accuracy"]
            (5, 2, 1.0)
        """
        data = dataclasses.asdict(self)
        data[f"top_{self.top_k}_accuracy"] = self.top_k_accuracy
        return data

    def table(self) -> str:
        """Overall scores, a per-class table and the confusion matrix, as text."""
        capped = ""
        if self.top_k_capped:
            capped = f" (k={self.top_k_requested} capped at the {len(self.class_names)} classes)"
        lines = [
            f"loss {self.loss:.4f}  accuracy {self.accuracy:.4f}  "
            f"top-{self.top_k} accuracy {self.top_k_accuracy:.4f}{capped}",
            "",
        ]
        width = max(5, *(len(n) for n in self.class_names))
        lines.append(f"{'class':<{width}}  precision  recall  support")
        for i, name in enumerate(self.class_names):
            support = sum(self.confusion[i])
            lines.append(
                f"{name:<{width}}  {self.precision[i]:9.4f}  {self.recall[i]:6.4f}  {support:7d}"
            )
        lines += ["", "confusion matrix (rows: true class, columns: predicted class)"]
        cell = max(5, *(len(str(v)) for row in self.confusion for v in row))
        header = " " * width + "  " + " ".join(f"{n[:cell]:>{cell}}" for n in self.class_names)
        lines.append(header)
        for name, row in zip(self.class_names, self.confusion):
            lines.append(f"{name:<{width}}  " + " ".join(f"{v:>{cell}}" for v in row))
        return "\n".join(lines)


def classification_report(
    y_true, probs, class_names: Sequence[str] | None = None, *, k: int = 5
) -> ClassificationReport:
    """Loss, accuracy, top-k accuracy, per-class precision/recall and confusion matrix.

    Args:
        y_true: Integer labels ``(n,)``.
        probs: Class probabilities ``(n, num_classes)``.
        class_names: Names of the classes (default ``"0"``, ``"1"``...).
        k: ``k`` of the top-k accuracy, capped at the number of classes (the
            report keeps both: ``top_k_requested`` and ``top_k``).

    Returns:
        A :class:`ClassificationReport`.

    Raises:
        DataError: If the shapes do not match.

    Example:
        >>> r = classification_report([0, 1], np.array([[0.9, 0.1], [0.2, 0.8]]), ["a", "b"])
        >>> r.accuracy, r.confusion
        (1.0, [[1, 0], [0, 1]])
    """
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    if probs.ndim != 2 or len(probs) != len(y_true):
        raise DataError(
            f"probs must be (n, num_classes) for {len(y_true)} labels, got {probs.shape}"
        )
    num_classes = probs.shape[1]
    names = [str(n) for n in class_names] if class_names else [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise DataError(f"{len(names)} class names for {num_classes} model outputs")
    matrix = confusion_matrix(y_true, probs.argmax(-1), num_classes)
    precision, recall = precision_recall(matrix)
    picked = np.clip(probs[np.arange(len(y_true)), y_true], 1e-7, 1.0)
    requested = int(k)
    k = min(requested, num_classes)
    return ClassificationReport(
        class_names=names,
        loss=float(-np.mean(np.log(picked))) if len(y_true) else 0.0,
        accuracy=float(np.trace(matrix) / max(1, matrix.sum())),
        top_k=k,
        top_k_accuracy=top_k_accuracy(y_true, probs, k),
        precision=[float(v) for v in precision],
        recall=[float(v) for v in recall],
        confusion=matrix.tolist(),
        top_k_requested=requested,
    )


def plot_confusion_matrix(report: ClassificationReport, path) -> None:
    """Draw the confusion matrix of a report as a PNG (needs matplotlib).

    Args:
        report: The report.
        path: The PNG file to write.

    Raises:
        MissingDependencyError: If matplotlib is not installed.
    """
    from keras_cnnkit._optional import require

    matplotlib = require("matplotlib", extra="plot")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    matrix = np.asarray(report.confusion)
    n = len(report.class_names)
    size = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), report.class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), report.class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= 30:
        top = matrix.max() or 1
        for i in range(n):
            for j in range(n):
                color = "white" if matrix[i, j] > top / 2 else "black"
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color)
    ax.set_title(f"accuracy {report.accuracy:.3f}")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
