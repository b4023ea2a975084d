"""Sample-level comparisons from predictions.csv: the held-out test set, and pooled out-of-fold predictions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from harness.stats._effects import bootstrap_ci
from harness.stats._results import StatsError
from harness.stats._tests import mcnemar
from harness.stats.metrics import EPS, metric_value
from harness.stats.power import POWER
from harness.stats.registry import MetricInfo
from harness.stats.testset import cluster_bootstrap, clustered_mcnemar, randomization_test

CONDITIONAL = ("conditional on these trained models, blind to training variability (a retrained model could "
               "differ): not a headline result")


def averaged(predictions: pd.DataFrame, arm: str, role: str, repeat: int | None = None) -> pd.DataFrame:
    """One row per sample: y_true and the mean of the arm's predicted probabilities over its models."""
    rows = predictions[(predictions["arm"] == arm) & (predictions["role"] == role)]
    if repeat is not None:
        rows = rows[rows["repeat"] == repeat]
    columns = sorted((c for c in rows.columns if c.startswith("p_")), key=lambda c: int(c[2:]))
    return rows.groupby("sample_id", sort=True).agg({"y_true": "first", **dict.fromkeys(columns, "mean")})


def _paired_frames(predictions: pd.DataFrame, arm: str, baseline: str, role: str,
                   repeat: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    a, b = averaged(predictions, arm, role, repeat), averaged(predictions, baseline, role, repeat)
    if a.empty or b.empty:
        raise StatsError(f"no {role} predictions for {arm if a.empty else baseline}")
    if not a.index.equals(b.index):
        raise StatsError(f"{arm} and {baseline} were scored on different {role} samples (splits differ); not paired")
    return a, b


def _group_array(index: pd.Index, groups: dict[str, str] | None) -> np.ndarray | None:
    if groups is None:
        return None
    return np.array([groups.get(str(s), f"sample:{s}") for s in index])


def _safe(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return asdict(fn(*args, **kwargs))
    except StatsError as exc:
        return {"error": str(exc)}


def test_set_tests(predictions: pd.DataFrame, groups: dict[str, str] | None, arm: str, baseline: str,
                   info: MetricInfo, rope: float, alpha: float, seed: int = 0) -> dict[str, Any]:
    """Held-out test set: each arm's fold models averaged per sample, paired over samples (groups clustered).

    Primary test: exact McNemar for accuracy (Durkalski's clustered McNemar with groups), a paired
    randomization test for every other metric. P(better/equivalent/worse) come from the (cluster)
    bootstrap distribution of the oriented difference against the rope.
    """
    a, b = _paired_frames(predictions, arm, baseline, "test", None)
    y = a["y_true"].to_numpy().astype(int)
    pa, pb = a.drop(columns="y_true").to_numpy(), b.drop(columns="y_true").to_numpy()
    g = _group_array(a.index, groups)
    n_classes = pa.shape[1]
    if info.name in ("accuracy", "loss"):  # per-sample: the difference is a mean of per-sample values
        va, vb = ((p.argmax(1) == y).astype(float) for p in (pa, pb)) if info.name == "accuracy" else \
            (-np.log(p[np.arange(len(y)), y] + EPS) for p in (pa, pb))

        def score(idx: np.ndarray, swap: np.ndarray | None = None) -> float:
            sa, sb = (va, vb) if swap is None else (np.where(swap, vb, va), np.where(swap, va, vb))
            return float(np.mean(sa[idx]) - np.mean(sb[idx]))
    else:
        def score(idx: np.ndarray, swap: np.ndarray | None = None) -> float:
            qa, qb = (pa, pb) if swap is None else (np.where(swap[:, None], pb, pa), np.where(swap[:, None], pa, pb))
            return metric_value(info.name, y[idx], qa[idx], n_classes) - metric_value(info.name, y[idx], qb[idx], n_classes)
    tests: dict[str, Any] = {}
    resamples = 500 if info.name == "roc_auc_ovr" else 2000  # ROC-AUC goes through scikit-learn: slower
    if info.name == "accuracy":
        tests["test_set"] = (_safe(clustered_mcnemar, y, pa.argmax(1), pb.argmax(1), g) if g is not None
                             else _safe(mcnemar, y, pa.argmax(1), pb.argmax(1), exact=True))
    else:
        tests["test_set"] = _safe(randomization_test, score, len(y), g, n_resamples=resamples - 1, seed=seed)
    try:
        interval, replicates = cluster_bootstrap(score, len(y), g, n_resamples=resamples, seed=seed)
    except StatsError as exc:
        tests["bootstrap"] = {"error": str(exc)}
        return tests
    tests["bootstrap"] = asdict(interval)
    oriented = info.sign * replicates
    tests["bayes"] = {"p_a_better": float(np.mean(oriented > rope)), "p_rope": float(np.mean(np.abs(oriented) <= rope)),
                      "p_b_better": float(np.mean(oriented < -rope)), "rope": rope, "mean": interval.estimate,
                      "assumption": "share of bootstrap resamples of the test samples above/inside/below the rope"}
    se = float(np.std(replicates, ddof=1))  # 0: every resample agrees, so the noise cannot be estimated
    tests["min_detectable"] = float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(POWER)) * se) if se > 0 else None
    tests["samples"] = {"n": len(y), "groups": None if g is None else int(len(np.unique(g))),
                        "score": metric_value(info.name, y, pa, n_classes),
                        "baseline_score": metric_value(info.name, y, pb, n_classes),
                        "models_averaged": int(predictions[(predictions["arm"] == arm) & (predictions["role"] == "test")]
                                               .groupby(["repeat", "fold"]).ngroups),
                        "scope": "held-out test set, " + CONDITIONAL}
    return tests


def oof_tests(predictions: pd.DataFrame, groups: dict[str, str] | None, arm: str, baseline: str,
              seed: int = 0) -> dict[str, Any]:
    """McNemar and a bootstrap of the accuracy difference on repeat 0's pooled out-of-fold predictions.

    Clustered by group when there are groups; labelled conditional (they see one set of trained models).
    """
    try:
        a, b = _paired_frames(predictions, arm, baseline, "val", 0)
    except StatsError as exc:
        return {"mcnemar": {"error": str(exc)}}
    y = a["y_true"].to_numpy().astype(int)
    ya, yb = (f.drop(columns="y_true").to_numpy().argmax(1) for f in (a, b))
    g = _group_array(a.index, groups)
    if g is None:
        test = _safe(mcnemar, y, ya, yb)
        boot = _safe(bootstrap_ci, y, ya, yb, seed=seed)
    else:
        ca, cb = (ya == y).astype(float), (yb == y).astype(float)
        test = _safe(clustered_mcnemar, y, ya, yb, g)
        try:
            boot = asdict(cluster_bootstrap(lambda idx: float(np.mean(ca[idx]) - np.mean(cb[idx])), len(y), g,
                                            seed=seed)[0])
        except StatsError as exc:
            boot = {"error": str(exc)}
    for result in (test, boot):
        result["scope"] = "pooled out-of-fold predictions (repeat 0), " + CONDITIONAL
    return {"mcnemar": test, "bootstrap_accuracy": boot}
