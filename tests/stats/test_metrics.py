"""Classification metrics against scikit-learn, and the undefined cases said out loud."""

from __future__ import annotations

import math

import numpy as np
import pytest


def test_macro_metrics_over_classes_present() -> None:
    """A fold without class 2, predicted perfectly: old code gave macro F1 0.667 (absent class counted as 0)."""
    from harness.stats.metrics import classification_metrics

    y = np.array([0, 0, 1, 1, 1])
    probs = np.eye(3)[y] * 0.9 + 0.05
    m = classification_metrics(y, probs, 3)
    assert m["f1_macro"] == 1.0 and m["precision_macro"] == 1.0 and m["recall_macro"] == 1.0
    assert m["balanced_accuracy"] == m["recall_macro"] == 1.0


def test_roc_auc_undefined_says_why() -> None:
    from harness.stats.metrics import classification_metrics

    notes: list[str] = []
    m = classification_metrics(np.array([1, 1, 1]), np.array([[0.2, 0.8], [0.4, 0.6], [0.7, 0.3]]), 2, notes)
    assert math.isnan(m["roc_auc_ovr"])
    assert any("roc_auc_ovr undefined: only one class" in n for n in notes)
    notes.clear()
    bad = np.array([[0.5, np.nan], [0.4, 0.6], [0.7, 0.3]])
    assert math.isnan(classification_metrics(np.array([0, 1, 0]), bad, 2, notes)["roc_auc_ovr"])
    assert any("scikit-learn refused it" in n for n in notes)


def test_fast_metric_value_equals_scikit_learn() -> None:
    """metric_value (used inside bootstraps) must give exactly classification_metrics' (scikit-learn's) numbers."""
    from harness.stats.metrics import classification_metrics, metric_value

    rng = np.random.default_rng(3)
    for n_classes, n in ((2, 30), (4, 40), (4, 7)):  # n = 7: some classes absent or never predicted
        y = rng.integers(0, n_classes, n)
        probs = rng.dirichlet(np.ones(n_classes), n)
        reference = classification_metrics(y, probs, n_classes)
        for name, value in reference.items():
            assert metric_value(name, y, probs, n_classes) == pytest.approx(value, nan_ok=True), name
