"""The report's first screen and data sections: the question, the verdict in plain words, the paired
differences per fold with their interval and the ROPE, what the design could detect; per-group
scores; the dataset's class/group/fold counts. Plain data first (tested), pictures second."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

PERCENT_METRICS = {"accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
                   "precision_weighted", "recall_weighted", "f1_weighted", "roc_auc_ovr"}


@dataclass
class Answer:
    question: str
    sentences: list[str]
    detectable: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)  # cells whose training failed
    plot: str | None = None  # base64 PNG: paired differences per fold, interval, ROPE
    scores: str = ""  # each arm's own score on the study's metric with its interval, and the trivial baseline
    gates: list[str] = field(default_factory=list)  # flat attention gates, in words (harness.report.insight)


def _scale(metric: str) -> tuple[float, str]:
    return (100.0, " points") if metric in PERCENT_METRICS else (1.0, "")


def _fmt(value: float | None, metric: str, sign: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    factor, unit = _scale(metric)
    text = f"{factor * value:{'+' if sign else ''}.1f}" if factor != 1 else f"{value:{'+' if sign else ''}.3g}"
    return ("0.0" if text in ("-0.0", "+0.0") else text) + unit


BASELINE_NAMES = {"accuracy": "majority class", "balanced_accuracy": "chance", "roc_auc_ovr": "chance",
                  "loss": "class frequencies as probabilities"}


def trivial_baseline(metric: str, class_counts: list[list[int]]) -> float:
    """What a model that ignores the image scores on ``metric``: the constant prediction of the largest class with
    the class frequencies as probabilities, averaged over the scored sets (one list of class counts each). So
    balanced accuracy and macro recall give chance (1/classes), accuracy the majority-class rate, ROC-AUC 0.5,
    the loss the classes' entropy, and F1 / precision the constant majority prediction's."""
    from harness.stats.metrics import classification_metrics

    metric = metric.removeprefix("test_")
    values = []
    for counts in class_counts:
        counts_array = np.asarray(counts, dtype=float)
        if counts_array.sum() <= 0:
            continue
        prior = counts_array / counts_array.sum()
        if metric == "loss":
            values.append(float(-(prior[prior > 0] * np.log(prior[prior > 0])).sum()))
            continue
        y_true = np.repeat(np.arange(len(counts)), counts_array.astype(int))
        probs = np.tile(prior, (len(y_true), 1))
        values.append(classification_metrics(y_true, probs, len(counts))[metric])
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _score(value: float, metric: str) -> str:
    factor, unit = _scale(metric.removeprefix("test_"))
    if not math.isfinite(value):
        return "–"
    return f"{factor * value:.1f} %" if unit else f"{value:.3g}"


def scores_sentence(metric: str, scores: dict[str, tuple[float, float, float]], baseline: float,
                    scope: str = "mean over folds") -> str:
    """Each arm's mean on the study's metric with its 95 % interval, then the metric's trivial baseline."""
    parts = [f"{arm} {_score(mean, metric)}" + (f" ({_score(low, metric)} to {_score(high, metric)})"
                                                  if math.isfinite(low) and math.isfinite(high) else "")
             for arm, (mean, low, high) in scores.items()]
    name = BASELINE_NAMES.get(metric.removeprefix("test_"), "constant majority prediction")
    reference = f"; {name} {_score(baseline, metric)}" if math.isfinite(baseline) else ""
    return f"Scores on {metric} ({scope}, 95 % interval): {'; '.join(parts)}{reference}."


def run_summary(results: pd.DataFrame, metric: str) -> str:
    """The table ``harness run`` prints per arm (mean and sd over folds): the study's metric first."""
    from harness.stats import resolve_metric

    column = resolve_metric(metric).column
    columns = [c for c in dict.fromkeys([column, "accuracy", "f1_macro"]) if c in results]
    summary = results.groupby("arm", sort=False)[columns].agg(["mean", "std"])
    return summary.to_string(float_format=lambda v: f"{v:.4f}")


def _interval(arm: dict[str, Any]) -> tuple[float, float] | None:
    interval = arm.get("difference_interval") or {}
    if "low" in interval and "high" in interval:
        return float(interval["low"]), float(interval["high"])
    return None


def _difference(arm: dict[str, Any]) -> float:
    value = arm.get("difference")
    if value is None or not math.isfinite(float(value)):
        return float(arm["mean"]) - float(arm["baseline_mean"])
    return float(value)


def verdict_sentence(arm: dict[str, Any], metric: str, rope: float) -> str:
    """One plain sentence: what the data say about this arm against the baseline."""
    name, base = arm["arm"], arm["baseline"]
    diff = _difference(arm)
    interval = _interval(arm)
    where = (f" (95 % interval {_fmt(interval[0], metric, True)} to {_fmt(interval[1], metric, True)})"
             if interval else "")
    bayes = arm.get("tests", {}).get("bayes", {})
    if "p_a_better" not in bayes:
        return f"{name} vs {base}: no verdict could be computed ({bayes.get('error', 'too few paired folds')})."
    pa, pr, pb = bayes["p_a_better"], bayes["p_rope"], bayes["p_b_better"]
    size = f"{_fmt(diff, metric, True)} on {metric}{where}"
    verdict = arm.get("verdict", "inconclusive")
    if verdict == "better":
        return f"{name} is better than {base}: {size}; probability it is really better {pr_text(pa)}."
    if verdict == "worse":
        return f"{name} is worse than {base}: {size}; probability it is really worse {pr_text(pb)}."
    if verdict == "equivalent":
        return (f"{name} and {base} are practically the same: {size}, within ±{_fmt(rope, metric)} "
                f"with probability {pr_text(pr)}.")
    return (f"The data cannot tell whether {name} is better than {base}: {size}; probability better "
            f"{pr_text(pa)}, practically the same {pr_text(pr)}, worse {pr_text(pb)}.")


def pr_text(p: float) -> str:
    return f"{100 * p:.0f} %" if 0.01 <= p <= 0.99 else ("> 99 %" if p > 0.99 else "< 1 %")


def build_answer(study: dict[str, Any], significance: dict[str, Any] | None, results: pd.DataFrame,
                 protocol: str, class_counts: list[list[int]] | None = None,
                 summaries: dict[str, tuple[float, float, float]] | None = None) -> Answer:
    """The answer box's content from the study, stats.json (when there is one) and results.csv; ``class_counts``
    (per scored set) give the metric's trivial baseline, ``summaries`` each arm's (mean, low, high) where
    stats.json has none."""
    compare = study.get("compare") or {}
    arms = list(dict.fromkeys(results["arm"])) if "arm" in results else []
    metric = (significance or {}).get("metric") or compare.get("metric", "accuracy")
    baseline = (significance or {}).get("baseline") or compare.get("baseline") or (arms[0] if arms else "")
    others = [a for a in arms if a != baseline]
    question = (f"Does {', '.join(others)} score differently from {baseline} on {metric}? ({protocol})" if others
                else f"How well does {baseline} score on {metric}? ({protocol}; one arm, nothing to compare)")
    flagged = []
    if "training_flag" in results:
        for r in results[results["training_flag"].fillna("").astype(str) != ""].itertuples():
            flagged.append(f"{r.arm} repeat {r.repeat} fold {r.fold}: {r.training_flag}")
    scores = arm_scores(significance, summaries or {})
    reference = trivial_baseline(metric, class_counts) if class_counts else math.nan
    scope = "held-out test set" if (significance or {}).get("scope") == "held-out test set" else "mean over folds"
    score_text = scores_sentence(metric, scores, reference, scope) if scores else ""
    if not significance:
        return Answer(question, ["No comparison was made (one arm, or statistics were not computed)."],
                      flagged=flagged, scores=score_text)
    rope = float(significance.get("rope", 0.0))
    sentences = [verdict_sentence(a, metric, rope) for a in significance.get("arms", [])]
    if significance.get("stopping"):  # cv.stop_when_settled
        from harness.stats.sequential import describe

        sentences.append(f"Repeats: {describe(significance['stopping'])}.")
    detectable = []
    for a in significance.get("arms", []):
        md = a.get("min_detectable")
        if md is not None and math.isfinite(float(md)):
            detectable.append(f"{a['arm']}: with {a['n']} paired folds this design detects differences of about "
                              f"{_fmt(float(md), metric)} or more (80 % power); smaller ones would likely be missed.")
    if flagged:
        sentences.append(f"Caution: {len(flagged)} cell(s) did not train properly (listed below); "
                         "their scores are part of this verdict.")
    return Answer(question, sentences, detectable, flagged, differences_png(significance, metric), score_text)


def arm_scores(significance: dict[str, Any] | None, summaries: dict[str, tuple[float, float, float]]
               ) -> dict[str, tuple[float, float, float]]:
    """(mean, low, high) per arm, baseline first: from stats.json (the compared scores) where it has them."""
    scores: dict[str, tuple[float, float, float]] = {}
    for item in (significance or {}).get("arms", []):
        for name, mean, interval in ((item["baseline"], item.get("baseline_mean"), item.get("baseline_interval")),
                                     (item["arm"], item.get("mean"), item.get("interval"))):
            if name not in scores and mean is not None:
                low, high = (float(interval["low"]), float(interval["high"])) if interval and "low" in interval \
                    else (math.nan, math.nan)
                scores[name] = (float(mean), low, high)
    return scores or dict(summaries)


def differences_png(significance: dict[str, Any], metric: str) -> str | None:
    """Per arm: each fold's paired difference (dots), the mean with its interval, the ROPE band, zero."""
    from harness.report.plots import _pyplot, to_png

    arms = [a for a in significance.get("arms", []) if a.get("differences")]
    if not arms:
        return None
    plt = _pyplot()
    factor, unit = _scale(metric)
    rope = factor * float(significance.get("rope", 0.0))
    fig, ax = plt.subplots(figsize=(7.5, 0.7 + 0.65 * len(arms)), dpi=90)
    ax.axvspan(-rope, rope, color="tab:green", alpha=0.15, label=f"practically equivalent (±{rope:g}{unit})")
    ax.axvline(0, color="gray", linewidth=0.8)
    for row, arm in enumerate(arms):
        y = len(arms) - 1 - row
        diffs = factor * np.asarray(arm["differences"], dtype=float)
        jitter = np.linspace(-0.12, 0.12, len(diffs)) if len(diffs) > 1 else np.zeros(1)
        ax.scatter(diffs, y + jitter, s=18, color="tab:blue", alpha=0.7, zorder=3,
                   label="one fold (arm − baseline)" if row == 0 else None)
        mean = factor * _difference(arm)
        interval = _interval(arm)
        if interval:
            ax.plot([factor * interval[0], factor * interval[1]], [y, y], color="black", linewidth=2,
                    label="mean with 95 % interval" if row == 0 else None)
        ax.scatter([mean], [y], marker="D", s=40, color="black", zorder=4,
                   label=None if interval or row else "mean")
    ax.set_yticks(range(len(arms)), [f"{a['arm']}\nvs {a['baseline']}" for a in arms][::-1])
    ax.set_xlabel(f"difference in {metric}{unit}")
    ax.set_ylim(-0.6, len(arms) - 0.4)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return to_png(fig)


def group_scores(predictions: pd.DataFrame, splits: pd.DataFrame, n_classes: int) -> list[dict[str, Any]]:
    """Scores per clinical unit: the out-of-fold probabilities averaged over each group's images of one
    true class (a video, or a patient's images of one plane), mean over repeats. Empty without groups."""
    from harness.stats.metrics import classification_metrics

    if predictions.empty or "group" not in splits or (splits["group"].fillna("").astype(str) == "").all():
        return []
    groups = splits[splits.role == "val"][["repeat", "fold", "sample_id", "group"]].drop_duplicates()
    oof = predictions[predictions.role == "val"].merge(groups, on=["repeat", "fold", "sample_id"], how="left")
    prob_columns = [f"p_{c}" for c in range(n_classes)]
    rows = []
    for arm, part in oof.groupby("arm", sort=False):
        per_repeat = []
        for _, rep in part.groupby("repeat"):
            units = rep.groupby(["group", "y_true"])[prob_columns].mean().reset_index()
            scores = classification_metrics(units["y_true"].to_numpy(), units[prob_columns].to_numpy(), n_classes)
            image = classification_metrics(rep["y_true"].to_numpy(), rep[prob_columns].to_numpy(), n_classes)
            majority = units["y_true"].value_counts(normalize=True).max()
            per_repeat.append({"units": len(units), "image_accuracy": image["accuracy"],
                               "group_accuracy": scores["accuracy"], "group_balanced_accuracy": scores["balanced_accuracy"],
                               "group_f1_macro": scores["f1_macro"], "group_roc_auc_ovr": scores["roc_auc_ovr"],
                               "group_majority_rate": float(majority)})
        frame = pd.DataFrame(per_repeat)
        rows.append({"arm": str(arm), **{k: float(frame[k].mean()) for k in frame.columns}, "units": int(frame["units"].iloc[0])})
    return rows
