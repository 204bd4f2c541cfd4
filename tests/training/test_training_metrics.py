import numpy as np
import pytest
from sklearn import metrics as skm

from keras_cnnkit.errors import DataError
from keras_cnnkit.evaluation.metrics import (
    classification_report,
    confusion_matrix,
    precision_recall,
    top_k_accuracy,
)


def test_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=200)
    y = rng.integers(0, 4, 200)
    pred = probs.argmax(-1)
    matrix = confusion_matrix(y, pred, 4)
    np.testing.assert_array_equal(matrix, skm.confusion_matrix(y, pred, labels=range(4)))
    p, r = precision_recall(matrix)
    np.testing.assert_allclose(p, skm.precision_score(y, pred, average=None, zero_division=0))
    np.testing.assert_allclose(r, skm.recall_score(y, pred, average=None, zero_division=0))
    for k in (1, 2, 3):
        assert top_k_accuracy(y, probs, k) == pytest.approx(
            skm.top_k_accuracy_score(y, probs, k=k, labels=range(4))
        )
    report = classification_report(y, probs, list("abcd"), k=2)
    assert report.loss == pytest.approx(skm.log_loss(y, probs, labels=range(4)))
    assert report.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    table = report.table()
    assert "top-2 accuracy" in table and "confusion matrix" in table and "\nd " in table


def test_bad_input_is_named():
    with pytest.raises(DataError, match="outside 0..1"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(DataError, match="3 class names for 2 model outputs"):
        classification_report([0], np.array([[0.4, 0.6]]), ["a", "b", "c"])
