"""Is the effect the same under every setting? Pure statistics over per-setting cross-validation scores.

Every setting of a study (``settings:``) runs every arm on the same folds with the same seeds, so the
per-fold differences arm - baseline of two settings are paired by cell (repeat, fold) and correlated.

**Interaction test** (whether the difference depends on the setting): per cell i, the differences
d_i,s (s = settings) give the contrasts c_i = (d_i,2 - d_i,1, ..., d_i,S - d_i,1) (a difference of
differences). Under no interaction their mean is 0. The cells are not independent (folds share training
data), so, as Nadeau & Bengio (2003) do for one difference, the covariance of the mean contrast is the
sample covariance times (1/n + n_test/n_train) instead of 1/n; the statistic is Hotelling's
T^2 = m' [S (1/n + n_test/n_train)]^-1 m, referred to F(q, n - q) with q = S - 1. With two settings it is
exactly the corrected t test on the per-cell difference of differences (F = t^2). Why this test: the
settings' differences are paired by cell, which the contrast uses (the cell's shared fold difficulty and
seed cancel), and when the cells are equicorrelated with rho = n_test / n (the model behind the
Nadeau-Bengio correction and Corani & Benavoli's correlated t) the statistic has exactly the F law; a
permutation of settings within cells would ignore the cells' correlation with each other (too many
rejections), and a plain repeated-measures ANOVA treats folds as independent. The null simulations in
``tests/stats/test_settings.py`` measure its level under correlated CV-like scores.

**Robustness**: per arm, its worst setting (lowest mean score; highest when lower is better) and its
spread (best minus worst setting mean), each with a corrected-t interval over the cells (the spread's on the
per-cell best - worst difference); vs the baseline, the per-cell difference of worst-setting scores and of
spreads, again with corrected intervals. The worst and best settings are chosen on the same scores, so the
worst score is optimistic about how bad it is and the spread is biased upward (by the same amount for every
arm when the noise is alike): read them as descriptions with honest widths, not as tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from harness.stats._results import StatsError
from harness.stats._tests import check_ratio, holm
from harness.stats.compare import Comparison, _interval

METHOD = ("Hotelling T^2 on the per-cell contrasts of the arm - baseline differences between settings, with the "
          "Nadeau-Bengio corrected covariance S (1/n + n_test/n_train); F(q, n - q), q = settings - 1 (two settings: "
          "the corrected t on the difference of differences)")


def interaction_test(differences: np.ndarray, *, test_train_ratio: float) -> dict[str, Any]:
    """Whether the arm - baseline difference depends on the setting.

    ``differences``: cells x settings (per cell (repeat, fold), the arm's score minus the baseline's, under each
    setting, on the same folds and seeds). Returns the statistic, its degrees of freedom and the p-value, or
    ``error`` when the design cannot support the test (too few cells for the number of settings, no variance)."""
    ratio = check_ratio(test_train_ratio)
    d = np.asarray(differences, dtype=float)
    if d.ndim != 2 or d.shape[1] < 2:
        raise StatsError(f"need cells x settings differences with 2 or more settings, got shape {d.shape}")
    d = d[np.all(np.isfinite(d), axis=1)]
    n, q = d.shape[0], d.shape[1] - 1
    base: dict[str, Any] = {"n": n, "q": q, "method": METHOD, "test_train_ratio": ratio}
    if n <= q:
        return {**base, "error": f"{n} cell(s) with a finite score under every setting; the test of {q + 1} settings "
                                 f"needs at least {q + 1} (more folds or repeats)"}
    contrasts = d[:, 1:] - d[:, :1]
    mean = contrasts.mean(axis=0)
    cov = np.atleast_2d(np.cov(contrasts, rowvar=False, ddof=1)) * (1 / n + ratio)
    if np.linalg.matrix_rank(cov, tol=1e-12 * max(1.0, float(np.abs(cov).max()))) < q:
        if np.allclose(mean, 0, atol=1e-12):
            return {**base, "error": "the difference is identical under every setting in every cell: no interaction, "
                                     "and no variance to test with"}
        return {**base, "error": "the contrasts between settings have no (or degenerate) variance across cells, so "
                                 "the test is undefined; compare the per-setting differences directly"}
    t2 = float(mean @ np.linalg.solve(cov, mean))
    f = t2 * (n - q) / (q * (n - 1))
    return {**base, "statistic": t2, "f": f, "df": [q, n - q], "pvalue": float(stats.f.sf(f, q, n - q)),
            "mean_contrasts": mean.tolist()}


def robustness(scores: Mapping[str, pd.DataFrame], arm: str, baseline: str, *, higher_is_better: bool,
               test_train_ratio: float, bounds: tuple[float, float] = (0.0, 1.0)) -> dict[str, Any]:
    """``arm``'s worst setting and spread across settings, and the same vs ``baseline``.

    ``scores``: setting id -> (repeat, fold) x arm table of the metric, on the same cells in every setting."""
    span = bounds[1] - bounds[0]
    out: dict[str, Any] = {}
    per_cell: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    common = _common_cells(scores, [arm, baseline])
    for name in dict.fromkeys([arm, baseline]):
        table = pd.DataFrame({s: t.loc[common, name] for s, t in scores.items()})
        means = table.mean()
        worst = str(means.idxmin() if higher_is_better else means.idxmax())
        best = str(means.idxmax() if higher_is_better else means.idxmin())
        sign = 1.0 if higher_is_better else -1.0  # per cell best - worst, not |best - worst|: its mean is the spread
        worst_cells, spread_cells = table[worst].to_numpy(), sign * (table[best] - table[worst]).to_numpy()
        per_cell[name] = (worst_cells, spread_cells)
        out[name] = {"means": {s: float(v) for s, v in means.items()}, "worst_setting": worst, "best_setting": best,
                     "worst": _interval(worst_cells, test_train_ratio, bounds),
                     "spread": _interval(spread_cells, test_train_ratio, (0.0, span))}
    if arm != baseline:
        (wa, sa), (wb, sb) = per_cell[arm], per_cell[baseline]
        sign = 1.0 if higher_is_better else -1.0
        out["vs_baseline"] = {"worst_difference": _interval(sign * (wa - wb), test_train_ratio, (-span, span)),
                              "spread_difference": _interval(sa - sb, test_train_ratio, (-span, span)),
                              "cells": len(common)}
        out["sentence"] = robustness_sentence(out, arm, baseline)
    return out


def _common_cells(scores: Mapping[str, pd.DataFrame], arms: Sequence[str]) -> pd.Index:
    """The (repeat, fold) cells where every listed arm has a finite score under every setting."""
    common: pd.Index | None = None
    for table in scores.values():
        finite = table[list(dict.fromkeys(arms))].dropna().index
        common = finite if common is None else common.intersection(finite, sort=False)
    if common is None or len(common) == 0:
        raise StatsError(f"no (repeat, fold) cell has finite scores for {', '.join(arms)} under every setting")
    return common


def robustness_sentence(rob: dict[str, Any], arm: str, baseline: str) -> str:
    """'se's worst setting (lr-0.1) scores +0.081 above plain's worst (lr-0.1) (95 % CI ...); spread ...'."""
    vs = rob["vs_baseline"]
    worst, spread = vs["worst_difference"], vs["spread_difference"]
    if "error" in worst or "error" in spread:
        return f"{arm} vs {baseline} robustness: not computable ({worst.get('error') or spread.get('error')})"

    def settled(iv: dict[str, Any]) -> str:
        return "above" if iv["low"] > 0 else ("below" if iv["high"] < 0 else "not distinguishable from")

    return (f"{arm}'s worst setting ({rob[arm]['worst_setting']}) vs {baseline}'s worst ({rob[baseline]['worst_setting']}): "
            f"{worst['estimate']:+.4f} ({settled(worst)} 0: 95 % CI {worst['low']:+.4f} to {worst['high']:+.4f}; "
            f"positive = {arm} better); spread across settings {rob[arm]['spread']['estimate']:.4f} vs "
            f"{rob[baseline]['spread']['estimate']:.4f}, difference {spread['estimate']:+.4f} (95 % CI "
            f"{spread['low']:+.4f} to {spread['high']:+.4f})")


def holm_across_settings(pvalues: Mapping[str, float | None]) -> dict[str, float | None]:
    """Holm-adjusted p-values of one arm's per-setting tests (the family: its settings)."""
    keys = list(pvalues)
    raw = [np.nan if pvalues[k] is None else float(pvalues[k]) for k in keys]  # type: ignore[arg-type]
    adjusted = holm(raw)
    return {k: (float(p) if np.isfinite(p) else None) for k, p in zip(keys, adjusted, strict=True)}


def holm_gated(verdict: str, holm_p: float | None, alpha: float) -> tuple[str, str]:
    """A setting's better/worse, kept only when the arm's corrected-t p Holm-adjusted across the settings is below
    ``alpha`` (else inconclusive, and why): S settings give S chances of a false better/worse, at 5 % each. Without
    a p-value (a difference equal on every fold: t undefined, the verdict's point mass) the verdict stands."""
    if verdict not in ("better", "worse") or holm_p is None or holm_p < alpha:
        return verdict, ""
    return "inconclusive", (f"{verdict} at this setting alone, but its corrected-t p Holm-adjusted across the settings "
                            f"is {holm_p:.3g}, not below {alpha:g}")


def effect_words(difference: float, verdict: str, p: dict[str, float], span: float, gated: str = "") -> str:
    """'+10.2 points (P 0.99)', 'none (P(equivalent) 0.97)', '-0.4 points (inconclusive, P(better) 0.31)'."""
    amount = f"{100 * difference:+.1f} points" if span == 1 else f"{difference:+.4g}"
    if gated:
        return f"{amount} (inconclusive after Holm across settings: {gated})"
    if verdict == "equivalent":
        return f"none ({amount}, P(equivalent) {p['p_rope']:.2f})"
    if verdict == "better":
        return f"{amount} (P {p['p_a_better']:.2f})"
    if verdict == "worse":
        return f"{amount} (worse, P {p['p_b_better']:.2f})"
    return f"{amount} (inconclusive, P(better) {p['p_a_better']:.2f})"


def clinician_sentence(arm: str, baseline: str, axis: str, per_setting: Mapping[str, dict[str, Any]],
                       interaction: dict[str, Any], alpha: float, span: float) -> str:
    """"se's advantage over plain depends on the lr: +10.2 points at lr-0.1 (P 0.99), none at lr-0.001 (...)"."""
    parts = ", ".join(f"{effect_words(s['difference'], s['verdict'], s['bayes'], span, s.get('verdict_note', ''))} at {sid}"
                      for sid, s in per_setting.items() if "bayes" in s and "p_a_better" in s["bayes"])
    if "error" in interaction:
        return f"{arm} vs {baseline} per {axis}: {parts}; whether this depends on the {axis} cannot be tested " \
               f"({interaction['error']})"
    p = interaction["pvalue"]
    if p < alpha:
        return f"{arm}'s advantage over {baseline} depends on the {axis} (interaction p {p:.3g}): {parts}"
    return (f"{arm} vs {baseline}: no detectable dependence on the {axis} (interaction p {p:.3g}; that is not proof "
            f"that there is none): {parts}")


def format_settings(analysis: dict[str, Any]) -> str:
    """The across-settings block ``harness compare`` prints."""
    lines = [f"across {len(analysis['settings'])} settings ({', '.join(analysis['settings'])}); {analysis['metric']}, "
             f"baseline {analysis['baseline']}:"]
    for item in analysis["arms"]:
        lines.append(f"  {item['sentence']}")
        for sid, s in item["per_setting"].items():
            holm_p = s.get("holm_p")
            lines.append(f"    {sid}: {s['verdict_text']}" + ("" if holm_p is None else f" (corrected t p, Holm "
                                                                                         f"across settings: {holm_p:.3g})"))
        inter = item["interaction"]
        lines.append(f"    interaction: {inter['error']}" if "error" in inter else
                     f"    interaction: T2 = {inter['statistic']:.4g}, F({inter['df'][0]}, {inter['df'][1]}) = "
                     f"{inter['f']:.4g}, p = {inter['pvalue']:.4g} (n = {inter['n']} cells)")
        lines.append(f"    robustness: {item['robustness'].get('sentence', '')}")
    for line in analysis.get("warnings", []):
        lines.append(f"  warning: {line}")
    return "\n".join(lines)


def axis_name(entries: Sequence[Mapping[str, Any]]) -> str:
    """What the settings vary, for sentences: the training keys every setting overrides ('lr') when they all
    override the same ones, else 'setting'."""
    def leaves(tree: Any, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
        if isinstance(tree, Mapping) and tree:
            return set().union(*(leaves(v, (*path, str(k))) for k, v in tree.items()))
        return {path}

    keys = [leaves(entry.get("training") or {}) for entry in entries]
    if not keys or any(k != keys[0] for k in keys) or keys[0] == {()}:
        return "setting"
    return " and ".join(sorted(path[-1] for path in keys[0]))


def analyse_settings(comparisons: dict[str, Comparison], tables: dict[str, pd.DataFrame], *, axis: str, span: float,
                     bounds: tuple[float, float]) -> dict[str, Any]:
    """Per arm: its verdict under each setting (Holm across settings), the interaction test and the robustness."""
    first = next(iter(comparisons.values()))
    baseline, ratio = first.baseline, float(np.mean([c.test_train_ratio for c in comparisons.values()]))
    cv = first.scope == "cross-validation"
    out: dict[str, Any] = {
        "metric": first.metric, "higher_is_better": first.higher_is_better, "baseline": baseline, "alpha": first.alpha,
        "rope": first.rope, "settings": list(comparisons), "axis": axis, "method": METHOD, "test_train_ratio": ratio,
        "scores": {s: {arm: float(t[arm].mean()) for arm in t.columns} for s, t in tables.items()},
        "intervals": {s: {a.arm: a.interval for a in c.arms} | {baseline: c.arms[0].baseline_interval if c.arms else None}
                      for s, c in comparisons.items()},
        "arms": [], "warnings": [f"{s}: {w}" for s, c in comparisons.items() for w in c.warnings]}
    arms = [a for a in dict.fromkeys(a.arm for c in comparisons.values() for a in c.arms)]
    for arm in arms:
        per = {s: c_arm for s, c in comparisons.items() for c_arm in c.arms if c_arm.arm == arm}
        holm_p = holm_across_settings({s: a.tests.get("corrected_t", {}).get("pvalue") for s, a in per.items()})
        per_setting = {}
        for s, a in per.items():
            verdict, note = holm_gated(a.verdict, holm_p[s], first.alpha) if cv else (a.verdict, "")
            per_setting[s] = {"difference": a.difference, "verdict": verdict, "verdict_note": note,
                              "verdict_text": a.verdict_text + (f" (inconclusive after Holm across settings: {note})"
                                                                if note else ""),
                              "bayes": a.tests.get("bayes", {}), "corrected_p": a.tests.get("corrected_t", {}).get("pvalue"),
                              "holm_p": holm_p[s], "difference_interval": a.difference_interval}
        item: dict[str, Any] = {"arm": arm, "baseline": baseline, "per_setting": per_setting}
        if not cv:
            why = f"computed on cross-validation scores only; {first.metric} is a held-out test metric"
            item["interaction"], item["robustness"] = {"error": why}, {"sentence": f"robustness: {why}"}
        else:
            try:
                diffs = pd.DataFrame({s: t[arm] - t[baseline] for s, t in tables.items()})
                item["interaction"] = interaction_test(diffs.to_numpy(), test_train_ratio=ratio)
            except (KeyError, StatsError) as exc:
                item["interaction"] = {"error": str(exc)}
            try:
                item["robustness"] = robustness(tables, arm, baseline, higher_is_better=first.higher_is_better,
                                                test_train_ratio=ratio, bounds=bounds)
            except (KeyError, StatsError) as exc:
                item["robustness"] = {"sentence": f"robustness not computable ({exc})"}
        item["sentence"] = clinician_sentence(arm, baseline, axis, per_setting, item["interaction"], first.alpha, span)
        out["arms"].append(item)
    return out


def settings_json(comparisons: dict[str, Comparison], analysis: dict[str, Any]) -> dict[str, Any]:
    """What ``compare --json`` prints and stats.json holds: each setting's comparison and the across-settings one."""
    return {"settings": {s: asdict(c) for s, c in comparisons.items()}, "across_settings": analysis}
