"""Plots the examples write: training curves and a confusion matrix (needs matplotlib)."""

from __future__ import annotations

import pathlib

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(history: dict, path, title: str = "Training curves") -> pathlib.Path:
    """Loss and accuracy per epoch from a ``History.history`` dict, saved as a small PNG."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(7, 2.8), dpi=80)
    for ax, key in zip(axes, ("loss", "accuracy")):
        for name in (key, f"val_{key}"):
            if name in history:
                values = history[name]
                ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def confusion_matrix(y_true, y_pred, class_names, path, title="Confusion matrix") -> pathlib.Path:
    """Counts of (true, predicted) class pairs drawn as an annotated grid, saved as a PNG."""
    n = len(class_names)
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()), 1)
    plt = _pyplot()
    size = max(3.0, 0.45 * n + 1.5)
    fig, ax = plt.subplots(figsize=(size, size), dpi=80)
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
