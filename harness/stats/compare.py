"""Compare every arm of a finished run with its baseline: the statistics of ``harness compare``, ``stats.json``
and the report.

Cross-validation scores: Nadeau-Bengio corrected t and the Bayesian correlated t (primary), with
corrected intervals and the minimum detectable difference. Held-out test scores (``test_*``): never the
CV test (k models on one shared test set are not k independent estimates): the fold models' averaged
predictions are compared per sample (see :mod:`harness.stats._samples`). Pure: the frames come from
:mod:`harness.run.analysis`, which reads and writes the run directory.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from harness.stats._effects import corrected_interval, effect_sizes
from harness.stats._results import VERDICT_RULE, StatsError, verdict_of
from harness.stats._samples import oof_tests, test_set_tests
from harness.stats._tests import (
    bayesian_correlated_ttest,
    constant_may_be_chance,
    corrected_ttest,
    friedman,
    holm,
    min_wilcoxon_p,
    paired_ttest,
    wilcoxon,
)
from harness.stats.flags import never_learned, training_flag_warnings
from harness.stats.power import POWER, min_detectable
from harness.stats.scores import RunScores

MIN_PAIRS = 10
CONDITIONAL_ON_DATASET = ("conditional on this dataset: whether the arms differ when retrained on new splits of these "
                          "same samples, not a test of the population difference (the repeats reuse one dataset and share "
                          "its arm difference: with no real difference it rejects far more often than alpha)")
REFERENCE_ONLY = "reference only: treats the folds as independent, anti-conservative for cross-validation"
FOLD_CAVEAT = ("on the k fold scores as independent blocks: they share training data, so this is anti-conservative "
               "(descriptive only)")


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
    difference: float = math.nan  # mean of arm - baseline, in metric units
    interval: dict[str, Any] | None = None  # of the arm's mean
    baseline_interval: dict[str, Any] | None = None
    difference_interval: dict[str, Any] | None = None
    min_detectable: float | None = None  # 80 % power at alpha with this design
    detectable_floor: float | None = None  # the same with infinitely many repeats


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
    higher_is_better: bool = True
    scope: str = "cross-validation"
    folds: int = 0
    repeats: int = 0
    method: str = ""
    variance: dict[str, Any] | None = None  # per-source variance and P(A > B) per seed setting (stats.variance)
    verdict_rule: str = VERDICT_RULE
    study_metric: str = ""  # the study's compare.metric (column); differs from metric under compare --metric
    metric_note: str = ""  # says so when it differs
    stopping: dict[str, Any] | None = None  # cv.stop_when_settled: the looks and why it stopped (run.stopping)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=float)


def _safe(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        return asdict(fn(*args, **kwargs))
    except StatsError as exc:
        return {"error": str(exc)}


def _orient(bayes: dict[str, Any], higher_is_better: bool) -> dict[str, Any]:
    """P(better) is P(a - b > rope) when higher is better, P(a - b < -rope) when lower is."""
    if higher_is_better or "error" in bayes:
        return bayes
    return {**bayes, "p_a_better": bayes["p_b_better"], "p_b_better": bayes["p_a_better"],
            "assumption": bayes.get("assumption", "") + "; lower is better: P(better) = P(a - b < -rope)"}


def _verdict(c: Comparison, item: ArmComparison) -> tuple[str, str]:
    bayes, arm, baseline, metric, rope = item.tests.get("bayes", {}), item.arm, item.baseline, c.metric, c.rope
    if "error" in bayes or not bayes:
        return "inconclusive", f"{arm} vs {baseline}: not computable ({bayes.get('error', 'no test')})"
    pa, pr, pb = bayes["p_a_better"], bayes["p_rope"], bayes["p_b_better"]
    verdict = verdict_of(pa, pr, pb)
    if verdict in ("better", "worse") and bayes.get("scale") == 0 and constant_may_be_chance(bayes["n"], c.alpha):
        return "inconclusive", (f"{arm} vs {baseline}: inconclusive on {metric}: the difference is {bayes['mean']:+.4g} "
                                f"on each of the {bayes['n']} paired scores (no spread to estimate the noise from), "
                                f"which {bayes['n']} scores show by chance too often (all on one side: "
                                f"{min_wilcoxon_p(bayes['n']):.3g} > {c.alpha:g}); more folds or repeats")
    if verdict != "inconclusive":
        words, p = {"better": (f"better than {baseline}", pa), "worse": (f"worse than {baseline}", pb),
                    "equivalent": (f"practically equivalent to {baseline} (within ±{rope:g})", pr)}[verdict]
        return verdict, f"{arm} is {words} on {metric} with probability {p:.3f}"
    text = (f"{arm} vs {baseline}: inconclusive on {metric} (P(better) {pa:.2f}, P(equivalent) {pr:.2f}, "
            f"P(worse) {pb:.2f})")
    if item.min_detectable is not None and math.isfinite(item.min_detectable):
        text += f"; this design detects differences of about {item.min_detectable:.3g} or more ({POWER:.0%} power)"
    if c.scope == "held-out test set":
        return "inconclusive", text + "; a larger (independent) test set would sharpen this"
    if item.detectable_floor is not None and math.isfinite(item.detectable_floor):
        text += f"; more repeats can lower that only to {item.detectable_floor:.3g} (the n_test/n_train floor)"
        if item.detectable_floor > rope:
            text += ", so below it only more data, a less noisy training recipe or a larger effect would help"
        else:
            text += f"; `harness plan RUN_DIR --effect {rope:g}` says how many repeats would detect the rope's size"
    return "inconclusive", text


def compare(run: RunScores, study: dict[str, Any], splits: pd.DataFrame | None = None,
            stopping: dict[str, Any] | None = None) -> Comparison:
    """Each arm vs the baseline. ``run``: the scores and settings (:func:`harness.stats.scores.run_scores`);
    ``study``: the resolved study (its ``compare:`` metric and ``cv`` design); ``splits``: splits.csv (sample ids
    as text), for the variance by seed source; ``stopping``: cv.stop_when_settled's record, shown as it is."""
    info = run.metric
    c = Comparison(info.column, run.baseline, run.alpha, run.rope, run.test_train_ratio, [], None, [],
                   info.higher_is_better, "held-out test set" if info.on_test else "cross-validation",
                   run.folds, run.repeats)
    c.study_metric, c.metric_note = _metric_note(study, info.column)
    table = run.table()
    for arm in run.arms:
        if arm == run.baseline:
            continue
        pair = table[[arm, run.baseline]].dropna()
        if pair.empty:  # e.g. every fold of the arm diverged: its metrics are NaN
            c.warnings.append(f"{arm}: no fold with a finite {info.column} (see the notes in results.csv); not compared")
            continue
        a, b = pair[arm].to_numpy(), pair[run.baseline].to_numpy()
        dropped = len(table) - len(pair)
        if dropped:
            c.warnings.append(f"{arm}: {dropped} (repeat, fold) pair(s) without a finite {info.column} left out")
        item = ArmComparison(arm, run.baseline, len(a), _mean(a), _sd(a), _mean(b), _sd(b), (a - b).tolist(),
                             difference=_mean(a - b) if len(a) else math.nan)
        if info.on_test:
            _test_set_arm(c, run, item)
        else:
            _cv_arm(c, run, item, a, b, pair)
        item.verdict, item.verdict_text = _verdict(c, item)
        if never_learned(run.results, arm) and never_learned(run.results, run.baseline):
            item.verdict, item.verdict_text = "inconclusive", (
                f"{arm} vs {run.baseline}: not assessable on {info.column}: in every fold neither arm's validation "
                "accuracy beat the majority-class rate (training failed for both), so the scores compare two failures; "
                "make training work (learning rate, epochs, the data) and rerun")
        c.arms.append(item)
    c.warnings += training_flag_warnings(run.results)  # the cells whose training failed
    primary = "test_set" if info.on_test else "corrected_t"
    adjusted = holm([item.tests.get(primary, {}).get("pvalue", np.nan) for item in c.arms])
    for item, p in zip(c.arms, adjusted, strict=True):
        item.holm_p = float(p) if np.isfinite(p) else None
    if len(run.arms) >= 3 and not info.on_test:
        c.friedman = _friedman(run, table)
    c.stopping = stopping
    c.variance = _variance(study, splits, run)
    if c.variance and c.variance.get("warning"):
        c.warnings.append(c.variance["warning"])
    if info.on_test:
        c.method = ("held-out test set: each arm's fold models' probabilities averaged per test sample, paired over "
                    "samples" + (" and clustered by group" if run.groups else "") + "; the CV (Nadeau-Bengio) test "
                    "is not used on test scores")
    else:
        c.method = (f"cross-validation ({run.folds} folds x {run.repeats} repeat(s)): corrected t (Nadeau-Bengio, "
                    f"n_test/n_train = {run.test_train_ratio:.3g}) and the Bayesian correlated t; intervals use the "
                    "corrected variance")
    return c


def _metric_note(study_dict: dict[str, Any], column: str) -> tuple[str, str]:
    """The study's comparison metric, and a note when this comparison (``--metric``) uses another one."""
    from harness.stats.registry import resolve_metric

    try:
        study = resolve_metric((study_dict.get("compare") or {}).get("metric") or "accuracy").column
    except StatsError:  # an old or edited study.yaml: nothing to compare against
        return "", ""
    if study == column:
        return study, ""
    return study, (f"note: the study compared on {study}; this compares on {column} (--metric), which answers "
                   "another question than the study's verdict and report")


def _variance(study: dict[str, Any], splits: pd.DataFrame | None, run: RunScores) -> dict[str, Any] | None:
    """The seed-source decomposition when the run has repeats (see :mod:`harness.stats.variance`)."""
    from harness.stats.variance import run_design, variance_summary

    cv = run_design(study)
    if cv is None:
        return None
    return variance_summary(run.results, cv, run.metric.column, run.arms, run.baseline, run.metric.higher_is_better,
                            run.alpha, splits)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else math.nan


def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else math.nan


def _interval(values: np.ndarray, ratio: float, bounds: tuple[float, float]) -> dict[str, Any]:
    return _safe(corrected_interval, values, test_train_ratio=ratio, bounds=bounds)


def _blocks(run: RunScores, pair: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Per-repeat means when there are repeats (folds within a repeat are correlated), else the folds with a caveat."""
    if run.repeats >= 2:
        return pair.groupby(level="repeat").mean(), f"on the {run.repeats} per-repeat means"
    return pair, FOLD_CAVEAT


def _cv_arm(c: Comparison, run: RunScores, item: ArmComparison, a: np.ndarray, b: np.ndarray, pair: pd.DataFrame) -> None:
    info, ratio = run.metric, run.test_train_ratio
    item.tests["corrected_t"] = _safe(corrected_ttest, a, b, test_train_ratio=ratio)
    item.tests["paired_t"] = {**_safe(paired_ttest, a, b), "scope": REFERENCE_ONLY}
    blocks, label = _blocks(run, pair)
    item.tests["wilcoxon"] = {**_safe(wilcoxon, blocks[item.arm].to_numpy(), blocks[item.baseline].to_numpy()),
                              "blocks": label, "scope": CONDITIONAL_ON_DATASET}
    item.tests["bayes"] = _orient(_safe(bayesian_correlated_ttest, a, b, test_train_ratio=ratio, rope=run.rope),
                                  info.higher_is_better)
    item.tests["effect_sizes"] = _safe(effect_sizes, a, b)
    bounds = (info.low, info.high)
    item.interval, item.baseline_interval = _interval(a, ratio, bounds), _interval(b, ratio, bounds)
    item.difference_interval = _interval(a - b, ratio, (-info.span, info.span))
    if len(a) >= 2 and "error" not in item.tests["corrected_t"]:  # a constant difference has no noise to scale by
        sd = float(np.std(a - b, ddof=1))
        item.min_detectable = min_detectable(sd, len(a), ratio, run.alpha)
        item.detectable_floor = min_detectable(sd, math.inf, ratio, run.alpha)
    if run.predictions is not None:
        item.tests.update(oof_tests(run.predictions, run.groups, item.arm, item.baseline))
    if len(a) < MIN_PAIRS:
        c.warnings.append(f"{item.arm}: only {len(a)} paired scores (< {MIN_PAIRS}); tests have little power")
    n_blocks = len(blocks)
    if n_blocks >= 1 and min_wilcoxon_p(n_blocks) > run.alpha:
        word = "per-repeat means" if run.repeats >= 2 else "folds"
        c.warnings.append(f"{item.arm}: with {n_blocks} {word} the Wilcoxon test cannot reach "
                          f"p < {run.alpha} (minimum attainable p = {min_wilcoxon_p(n_blocks):.3g})")


def _test_set_arm(c: Comparison, run: RunScores, item: ArmComparison) -> None:
    item.tests["corrected_t"] = {"error": "not used on held-out test scores: the k fold models share one test set, "
                                          "so their scores are not k independent estimates (see test_set)"}
    if run.predictions is None:
        item.tests["test_set"] = {"error": "predictions.csv is missing: the per-sample test cannot be computed"}
        return
    try:
        tests = test_set_tests(run.predictions, run.groups, item.arm, item.baseline, run.metric, run.rope, run.alpha)
    except StatsError as exc:
        item.tests["test_set"] = {"error": str(exc)}
        return
    item.min_detectable = tests.pop("min_detectable", None)
    item.tests.update(tests)
    boot = tests.get("bootstrap", {})
    if "estimate" in boot:
        item.difference = boot["estimate"]
        span = run.metric.span
        item.difference_interval = {**boot, "low": max(boot["low"], -span), "high": min(boot["high"], span)}


def _friedman(run: RunScores, table: pd.DataFrame) -> dict[str, Any]:
    complete = table[run.arms].dropna()
    if len(complete) < len(table):
        return {"error": f"{len(table) - len(complete)} (repeat, fold) row(s) lack a finite {run.metric.column} for "
                         "some arm (diverged or failed folds); Friedman needs every arm on every block: rerun them"}
    blocks, label = _blocks(run, complete)
    result = _safe(friedman, {arm: blocks[arm].to_numpy() for arm in run.arms}, run.alpha,
                   higher_is_better=run.metric.higher_is_better)
    return {**result, "blocks": label, "scope": CONDITIONAL_ON_DATASET}


def _num(value: Any, fmt: str = ".4g") -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, fmt)


def _ci(interval: dict[str, Any] | None, fmt: str = ".4f") -> str:
    if not interval or "low" not in interval:
        return "(no interval" + (f": {interval['error']})" if interval and "error" in interval else ")")
    return f"[{interval['low']:{fmt}}, {interval['high']:{fmt}}]"


def format_verdicts(c: Comparison) -> str:
    """The answer per arm, as ``harness run`` ends with it: difference, interval, P(better/equivalent/worse), sentence."""
    direction = "higher" if c.higher_is_better else "lower"
    lines = [f"verdict ({c.metric}, {direction} is better, {c.scope}; vs {c.baseline}):"]
    lines += _stopping_lines(c)
    for item in c.arms:
        bayes = item.tests.get("bayes", {})
        probs = (f"P(better) {bayes['p_a_better']:.3f}, P(equivalent) {bayes['p_rope']:.3f}, "
                 f"P(worse) {bayes['p_b_better']:.3f}") if "p_rope" in bayes else "probabilities not computable"
        lines.append(f"  {item.arm}: difference {item.difference:+.4f} {_ci(item.difference_interval)} 95 %; {probs}; "
                     f"detectable >= {_num(item.min_detectable, '.3g')}")
        lines.append(f"    {item.verdict_text}")
    lines.append(f"  ({c.verdict_rule})")
    return "\n".join(lines)


def format_comparison(c: Comparison) -> str:
    primary = "held-out test per sample" if c.scope == "held-out test set" else "corrected t"
    lines = [c.metric_note] if c.metric_note else []
    lines.append(f"{c.metric} ({'higher' if c.higher_is_better else 'lower'} is better): each arm vs {c.baseline}; {c.method}")
    for item in c.arms:
        p = item.tests.get("test_set" if c.scope == "held-out test set" else "corrected_t", {})
        samples = item.tests.get("samples")
        scores = (f"{samples['score']:.4f} vs {samples['baseline_score']:.4f} (fold models averaged)" if samples else
                  f"{item.mean:.4f} {_ci(item.interval)} vs {item.baseline_mean:.4f} {_ci(item.baseline_interval)}")
        lines.append(f"  {item.arm}: {scores}; difference {item.difference:+.4f} {_ci(item.difference_interval)}; "
                     f"{primary} p = {_num(p.get('pvalue'))} (Holm {'not computed' if item.holm_p is None else _num(item.holm_p)}); "
                     f"min detectable {_num(item.min_detectable, '.3g')}")
        if "error" in p:
            lines.append(f"    {primary}: {p['error']}")
        lines.append(f"    {item.verdict_text}")
    lines += _stopping_lines(c)
    if c.friedman and "error" not in c.friedman:
        lines.append(f"  Friedman chi2 = {c.friedman['statistic']:.3f}, p = {c.friedman['pvalue']:.4g}, "
                     f"Nemenyi CD = {c.friedman['critical_difference']:.3f} ({c.friedman['blocks']}; "
                     f"{c.friedman['scope']})")
    elif c.friedman:  # not computed; where it would have run, say on what (its scope)
        scope = f" ({c.friedman['blocks']}; {c.friedman['scope']})" if "scope" in c.friedman else ""
        lines.append(f"  Friedman: {c.friedman['error']}{scope}")
    lines.append(f"  verdicts: {c.verdict_rule}")
    if c.variance:
        from harness.stats.variance import format_variance

        lines += format_variance(c.variance)
    lines += [f"  warning: {w}" for w in c.warnings]
    return "\n".join(lines)


def _stopping_lines(c: Comparison) -> list[str]:
    """cv.stop_when_settled: how many repeats ran of the budget, and why it stopped."""
    if not c.stopping:
        return []
    from harness.stats.sequential import describe

    return [f"  repeats: {describe(c.stopping)}"]
