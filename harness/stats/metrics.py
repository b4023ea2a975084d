"""Classification metrics from one fold's predictions, with scikit-learn's definitions.

Macro averages run over the classes present in ``y_true`` or ``y_pred`` (scikit-learn's default),
so a class absent from a fold does not count as a 0; balanced accuracy is the mean recall over the
classes present in ``y_true`` (equal to macro recall unless a class is predicted that never occurs).
A metric that is undefined is NaN *with a reason* appended to ``notes``.
"""

from __future__ import annotations

import warnings

import numpy as np

EPS = 1e-12


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, n_classes: int,
                           notes: list[str] | None = None) -> dict[str, float]:
    """Accuracy, macro/weighted precision, recall and F1, balanced accuracy and one-vs-rest ROC-AUC."""
    from sklearn import metrics

    notes = [] if notes is None else notes
    y_true = np.asarray(y_true)
    y_pred = probs.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": documented above
        out = {"accuracy": metrics.accuracy_score(y_true, y_pred),
               "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred)}
        for average in ("macro", "weighted"):
            p, r, f, _ = metrics.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
            out[f"precision_{average}"], out[f"recall_{average}"], out[f"f1_{average}"] = p, r, f
    out["roc_auc_ovr"] = roc_auc(y_true, probs, n_classes, notes)
    return {k: float(v) for k, v in out.items()}


def roc_auc(y_true: np.ndarray, probs: np.ndarray, n_classes: int, notes: list[str] | None = None) -> float:
    """One-vs-rest ROC-AUC over the classes present; NaN with the reason in ``notes`` when undefined."""
    from sklearn.metrics import roc_auc_score

    notes = [] if notes is None else notes
    present = np.unique(y_true)
    if len(present) < 2:
        notes.append(f"roc_auc_ovr undefined: only one class ({int(present[0]) if len(present) else 'none'}) "
                     "among the scored samples, so there are no negatives to rank against")
        return float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if n_classes == 2:
                return float(roc_auc_score(y_true, probs[:, 1]))
            if len(present) < n_classes:
                notes.append(f"roc_auc_ovr averaged over the {len(present)} of {n_classes} classes present")
                return float(np.mean([roc_auc_score(y_true == c, probs[:, c]) for c in present]))
            return float(roc_auc_score(y_true, probs, multi_class="ovr", labels=list(range(n_classes))))
    except ValueError as exc:
        notes.append(f"roc_auc_ovr undefined: scikit-learn refused it ({exc})")
        return float("nan")


def metric_value(name: str, y_true: np.ndarray, probs: np.ndarray, n_classes: int) -> float:
    """One metric (canonical registry name) of one set of predictions; fast enough to bootstrap.

    The confusion-matrix metrics follow scikit-learn's definitions exactly (tested against it).
    """
    if name == "loss":
        return float(-np.mean(np.log(probs[np.arange(len(y_true)), y_true] + EPS)))
    y_pred = probs.argmax(axis=1)
    if name == "accuracy":
        return float(np.mean(y_pred == y_true))
    if name == "roc_auc_ovr":
        return roc_auc(y_true, probs, n_classes)
    matrix = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp, support, predicted = np.diag(matrix).astype(float), matrix.sum(1), matrix.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = {"precision": np.where(predicted > 0, tp / predicted, 0.0),
                     "recall": np.where(support > 0, tp / support, 0.0),
                     "f1": np.where(support + predicted > 0, 2 * tp / (support + predicted), 0.0)}
    if name == "balanced_accuracy":
        return float(np.mean(per_class["recall"][support > 0]))
    kind, average = name.rsplit("_", 1)
    values = per_class[kind]
    if average == "macro":
        return float(np.mean(values[(support + predicted) > 0]))
    return float(np.sum(values * support) / np.sum(support))
