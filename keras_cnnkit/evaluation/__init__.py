"""Evaluation of trained models: translation invariance, measured."""

from keras_cnnkit.evaluation.shift import (
    ShiftRobustness,
    plot_shift_heatmaps,
    shift_images,
    shift_robustness,
    summary_table,
)

__all__ = [
    "ShiftRobustness",
    "plot_shift_heatmaps",
    "shift_images",
    "shift_robustness",
    "summary_table",
]
