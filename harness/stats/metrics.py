"""Classification metrics from out-of-fold predictions (scikit-learn)."""

from __future__ import annotations

import warnings

import numpy as np


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, macro/weighted precision, recall and F1, balanced accuracy and one-vs-rest ROC-AUC."""
    from sklearn import metrics

    y_pred = probs.argmax(axis=1)
    labels = list(range(n_classes))
    out = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred) if len(np.unique(y_true)) > 1 else float("nan"),
    }
    for average in ("macro", "weighted"):
        p, r, f, _ = metrics.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        out[f"precision_{average}"], out[f"recall_{average}"], out[f"f1_{average}"] = p, r, f
    out["roc_auc_ovr"] = roc_auc(y_true, probs, n_classes)
    return {k: float(v) for k, v in out.items()}


def roc_auc(y_true: np.ndarray, probs: np.ndarray, n_classes: int) -> float:
    from sklearn.metrics import roc_auc_score

    present = np.unique(y_true)
    if len(present) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if n_classes == 2:
                return float(roc_auc_score(y_true, probs[:, 1]))
            if len(present) < n_classes:  # a class absent from this fold: average over present ones
                return float(np.mean([roc_auc_score(y_true == c, probs[:, c]) for c in present]))
            return float(roc_auc_score(y_true, probs, multi_class="ovr", labels=list(range(n_classes))))
        except ValueError:
            return float("nan")
