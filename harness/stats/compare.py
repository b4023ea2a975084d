"""Compare every arm of a finished run with its baseline: the statistics table of reports and ``stats.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.atomic import atomic_write_text
from harness.errors import HarnessError, did_you_mean
from harness.stats import (
    StatsError,
    bayesian_correlated_ttest,
    bootstrap_ci,
    corrected_ttest,
    effect_sizes,
    friedman,
    holm,
    mcnemar,
    min_wilcoxon_p,
    paired_ttest,
    wilcoxon,
)

MIN_PAIRS = 10


@dataclass
class ArmComparison:
    arm: str
    baseline: str
    n: int
    mean: float
    sd: float
    baseline_mean: float
    baseline_sd: float
    differences: list[float]
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    holm_p: float | None = None
    verdict: str = "inconclusive"
    verdict_text: str = ""


@dataclass
class Comparison:
    metric: str
    baseline: str
    alpha: float
    rope: float
    test_train_ratio: float
    arms: list[ArmComparison]
    friedman: dict[str, Any] | None
    warnings: list[str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=float)


def _safe(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return asdict(fn(*args, **kwargs))
    except StatsError as exc:
        return {"error": str(exc)}


def _verdict(bayes: dict[str, Any], arm: str, baseline: str, metric: str, rope: float) -> tuple[str, str]:
    if "error" in bayes:
        return "inconclusive", f"{arm} vs {baseline}: not computable ({bayes['error']})"
    pa, pr, pb = bayes["p_a_better"], bayes["p_rope"], bayes["p_b_better"]
    for verdict, p, words in (("better", pa, f"better than {baseline}"), ("worse", pb, f"worse than {baseline}"),
                              ("equivalent", pr, f"practically equivalent to {baseline} (within ±{rope:g})")):
        if p >= 0.95:
            return verdict, f"{arm} is {words} on {metric} with probability {p:.3f}"
    return "inconclusive", (f"{arm} vs {baseline}: inconclusive on {metric} (P(better) {pa:.2f}, "
                            f"P(equivalent) {pr:.2f}, P(worse) {pb:.2f}); more folds or repeats would sharpen this")


def compare_run(run_dir: Path, *, baseline: str | None = None, metric: str = "accuracy",
                alpha: float = 0.05, rope: float = 0.01) -> Comparison:
    """Each arm vs the baseline on paired (repeat, fold) scores, plus McNemar/bootstrap on predictions."""
    results_path = run_dir / "results.csv"
    if not results_path.exists():
        raise HarnessError(f"{run_dir} has no results.csv; run the study first")
    results = pd.read_csv(results_path)
    if metric not in results.columns:
        raise HarnessError(f"no metric {metric!r} in results.csv{did_you_mean(metric, results.columns)}")
    arms = list(dict.fromkeys(results["arm"]))
    if baseline is None:
        import yaml

        study = yaml.safe_load((run_dir / "study.yaml").read_text())
        baseline = (study.get("compare") or {}).get("baseline") or arms[0]
    if baseline not in arms:
        raise HarnessError(f"baseline {baseline!r} has no results{did_you_mean(baseline, arms)}; arms: {', '.join(arms)}")
    table = results.pivot_table(index=["repeat", "fold"], columns="arm", values=metric)
    ratio = float((results["n_val"] / results["n_train"]).mean())
    predictions = pd.read_csv(run_dir / "predictions.csv") if (run_dir / "predictions.csv").exists() else None
    warnings: list[str] = []
    comparisons = []
    for arm in arms:
        if arm == baseline:
            continue
        pair = table[[arm, baseline]].dropna()
        a, b = pair[arm].to_numpy(), pair[baseline].to_numpy()
        item = ArmComparison(arm, baseline, len(a), float(np.mean(a)), float(np.std(a, ddof=1)) if len(a) > 1 else float("nan"),
                             float(np.mean(b)), float(np.std(b, ddof=1)) if len(b) > 1 else float("nan"), (a - b).tolist())
        item.tests["corrected_t"] = _safe(corrected_ttest, a, b, test_train_ratio=ratio)
        item.tests["paired_t"] = _safe(paired_ttest, a, b)
        item.tests["wilcoxon"] = _safe(wilcoxon, a, b)
        item.tests["bayes"] = _safe(bayesian_correlated_ttest, a, b, test_train_ratio=ratio, rope=rope)
        item.tests["effect_sizes"] = _safe(effect_sizes, a, b)
        if predictions is not None:
            item.tests.update(_prediction_tests(predictions, arm, baseline))
        item.verdict, item.verdict_text = _verdict(item.tests["bayes"], arm, baseline, metric, rope)
        comparisons.append(item)
        if len(a) < MIN_PAIRS:
            warnings.append(f"{arm}: only {len(a)} paired scores (< {MIN_PAIRS}); tests have little power")
        if len(a) >= 2 and min_wilcoxon_p(len(a)) > alpha:
            warnings.append(f"{arm}: with {len(a)} pairs the Wilcoxon test cannot reach p < {alpha} "
                            f"(minimum attainable p = {min_wilcoxon_p(len(a)):.3g})")
    from harness.run.flags import training_flag_warnings

    warnings += training_flag_warnings(results)  # issue 16: list the cells whose training failed
    pvalues = [c.tests["corrected_t"].get("pvalue", np.nan) for c in comparisons]
    finite = [i for i, p in enumerate(pvalues) if np.isfinite(p)]
    for i, adjusted in zip(finite, holm([pvalues[i] for i in finite]), strict=True):
        comparisons[i].holm_p = float(adjusted)
    friedman_result = None
    if len(arms) >= 3:
        complete = table[arms].dropna()
        friedman_result = _safe(friedman, {arm: complete[arm].to_numpy() for arm in arms}, alpha)
    return Comparison(metric, baseline, alpha, rope, ratio, comparisons, friedman_result, warnings)


def _prediction_tests(predictions: pd.DataFrame, arm: str, baseline: str) -> dict[str, dict[str, Any]]:
    oof = predictions[(predictions["role"] == "val") & (predictions["repeat"] == 0)]
    keyed = {name: part.set_index(["fold", "sample_id"]).sort_index() for name, part in oof.groupby("arm")
             if name in (arm, baseline)}
    if len(keyed) < 2:
        return {}
    a, b = keyed[arm], keyed[baseline]
    if not a.index.equals(b.index):
        return {"mcnemar": {"error": "the arms were evaluated on different samples (splits differ); not paired"}}
    return {
        "mcnemar": _safe(mcnemar, a["y_true"], a["y_pred"], b["y_pred"]),
        "bootstrap_accuracy": _safe(bootstrap_ci, a["y_true"].to_numpy(), a["y_pred"].to_numpy(), b["y_pred"].to_numpy()),
    }


def write_stats(run_dir: Path, comparison: Comparison) -> Path:
    target = run_dir / "stats.json"
    atomic_write_text(target, comparison.to_json())
    return target


def format_comparison(c: Comparison) -> str:
    lines = [f"{c.metric}: each arm vs {c.baseline} (corrected t is primary; n_test/n_train = {c.test_train_ratio:.3g})"]
    for item in c.arms:
        t = item.tests["corrected_t"]
        lines.append(f"  {item.arm}: {item.mean:.4f} ± {item.sd:.4f} vs {item.baseline_mean:.4f} ± {item.baseline_sd:.4f}; "
                     f"corrected t p = {t.get('pvalue', float('nan')):.4g} (Holm {item.holm_p if item.holm_p is not None else float('nan'):.4g})")
        lines.append(f"    {item.verdict_text}")
    if c.friedman and "error" not in c.friedman:
        lines.append(f"  Friedman chi2 = {c.friedman['statistic']:.3f}, p = {c.friedman['pvalue']:.4g}, "
                     f"Nemenyi CD = {c.friedman['critical_difference']:.3f}")
    lines += [f"  warning: {w}" for w in c.warnings]
    return "\n".join(lines)
