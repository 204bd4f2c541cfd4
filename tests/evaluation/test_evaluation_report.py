"""The classification report says when top-k is capped at the number of classes."""

import json

import numpy as np

from keras_cnnkit.evaluation.metrics import classification_report

PROBS = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4], [0.3, 0.2, 0.5]])
LABELS = np.array([0, 2, 2, 1])


def test_capped_top_k_is_reported_under_its_real_k():
    report = classification_report(LABELS, PROBS, ["a", "b", "c"], k=5)
    data = json.loads(json.dumps(report.as_dict()))
    assert data["top_k"] == 3 and data["top_k_requested"] == 5
    assert data["top_3_accuracy"] == 1.0 and "top_5_accuracy" not in data
    assert "top-3 accuracy 1.0000 (k=5 capped at the 3 classes)" in report.table()


def test_top_k_within_the_classes_is_not_flagged():
    report = classification_report(LABELS, PROBS, ["a", "b", "c"], k=2)
    data = report.as_dict()
    assert data["top_k"] == data["top_k_requested"] == 2
    assert data["top_2_accuracy"] == 0.75  # the last sample's label is its third score
    assert "capped" not in report.table()
