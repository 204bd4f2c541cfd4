"""Evaluation of trained models: translation invariance, measured; where a model looks."""

from keras_cnnkit.evaluation._gradcam import (
    ClassActivationMap,
    find_feature_layer,
    grad_cam,
    overlay_heatmap,
    plot_shift_gradcam,
)
from keras_cnnkit.evaluation.shift import (
    ShiftRobustness,
    plot_shift_heatmaps,
    shift_images,
    shift_robustness,
    summary_table,
)

__all__ = [
    "ClassActivationMap",
    "ShiftRobustness",
    "find_feature_layer",
    "grad_cam",
    "overlay_heatmap",
    "plot_shift_gradcam",
    "plot_shift_heatmaps",
    "shift_images",
    "shift_robustness",
    "summary_table",
]
