"""Null simulations of whole CV designs: what ``compare`` shows as a significance test holds its level, and a
better/worse verdict is a false call in at most 5 % of designs where the arms do not differ (issue 26).

One design = one finite dataset of N samples on which three arms (different models of equal population
accuracy) are cross-validated, k folds x r repeats. Each sample has a difficulty and an arm-specific twist
(which model gets it right depends on the sample), each trained model a small training-noise shift, and each
arm a model-level shift shared by all its folds and repeats (what it learned from *this* dataset). So the
repeats share the dataset's arm difference, as in real CV. The scores are simulated vectorised; the p-values
are computed vectorised with the definitions compare uses, and checked against ``compare_run`` on one design
per cell. Wilcoxon p-values here are scipy's normal approximation (the harness lets scipy choose; with the
ties of per-repeat means that is a slow permutation test): the levels it measures are far from the bound.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from harness.run.analysis import compare_run
from harness.stats import bayesian_correlated_ttest
from harness.stats import sequential as seq
from harness.stats._results import verdict_of
from harness.stats._tests import constant_may_be_chance
from harness.stats.across import compare_across
from harness.stats.settings import interaction_test

ALPHA, ROPE, N, DESIGNS = 0.05, 0.01, 120, 600
GRID = [(k, r) for k in (4, 5, 10) for r in (1, 3, 10)]
MARGIN = 3 * math.sqrt(ALPHA * (1 - ALPHA) / DESIGNS)  # three binomial standard errors: 0.027
ARMS = ("a", "b", "c")


def null_cv_scores(rng: np.random.Generator, designs: int, k: int, r: int, n: int = N, arms: int = len(ARMS)) -> np.ndarray:
    """(designs, r, k, arms) fold accuracies of arms with equal population accuracy, one dataset per design."""
    difficulty = rng.normal(1.0, 4.0, (designs, 1, n, 1))
    twist = rng.normal(0.0, 4.0, (designs, 1, n, arms))
    fold_of = np.argsort(rng.random((designs, r, n)), axis=2).argsort(axis=2) % k
    shift = rng.normal(0.0, 0.1, (designs, r, k, arms)) + rng.normal(0.0, 0.4, (designs, 1, 1, arms))
    per_sample = np.take_along_axis(shift, np.broadcast_to(fold_of[..., None], (designs, r, n, arms)), axis=2)
    correct = rng.random((designs, r, n, arms)) < 1 / (1 + np.exp(-(difficulty + twist + per_sample)))
    scores = np.empty((designs, r, k, arms))
    for fold in range(k):
        member = (fold_of == fold)[..., None]
        scores[:, :, fold] = (correct & member).sum(2) / member.sum(2)
    return scores


def _bayes(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Corrected-t p and the Bayesian correlated t's P(better), P(rope), P(worse) of arm a vs b, per design."""
    d = (scores[..., 0] - scores[..., 1]).reshape(len(scores), -1)
    n = d.shape[1]
    scale = np.sqrt((1 / n + 1 / (k - 1)) * d.var(1, ddof=1))
    mean = d.mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a design whose differences are all equal: no spread
        above, below = stats.t.sf((ROPE - mean) / scale, n - 1), stats.t.cdf((-ROPE - mean) / scale, n - 1)
        return 2 * stats.t.sf(np.abs(mean / scale), n - 1), above, 1 - above - below, below


def _blocks(scores: np.ndarray) -> np.ndarray:
    """compare's blocks: the per-repeat means with repeats, else the folds."""
    return scores.mean(2) if scores.shape[1] >= 2 else scores[:, 0]


def rejection_rates(scores: np.ndarray, k: int) -> dict[str, float]:
    """Share of designs in which each test that carries a p-value rejects at ALPHA (arm a vs b; Friedman: all)."""
    d = (scores[..., 0] - scores[..., 1]).reshape(len(scores), -1)
    blocks = _blocks(scores)
    corrected = _bayes(scores, k)[0]
    paired = 2 * stats.t.sf(np.abs(d.mean(1) / (d.std(1, ddof=1) / math.sqrt(d.shape[1]))), d.shape[1] - 1)
    wilcoxon = stats.wilcoxon(blocks[..., 0] - blocks[..., 1], axis=1, method="asymptotic").pvalue
    friedman = stats.friedmanchisquare(*np.moveaxis(blocks, -1, 0), axis=1).pvalue
    return {name: float(np.mean(p < ALPHA)) for name, p in
            (("corrected_t", corrected), ("paired_t", paired), ("wilcoxon", wilcoxon), ("friedman", friedman))}


def false_calls(scores: np.ndarray, k: int) -> np.ndarray:
    """Per design: is the verdict (the harness's rule on the Bayesian probabilities) better or worse?"""
    _, above, rope, below = _bayes(scores, k)
    return np.array([verdict_of(*p) in ("better", "worse") for p in zip(above, rope, below, strict=True)])


def write_run(root: Path, design: np.ndarray) -> Path:
    """A run directory compare reads: results.csv of one simulated design (r, k, arms) and a study.yaml."""
    root.mkdir(parents=True)
    r, k, _ = design.shape
    rows = [{"arm": arm, "repeat": rep, "fold": fold, "status": "ok", "accuracy": design[rep, fold, i],
             "n_train": N - N // k, "n_val": N // k}
            for i, arm in enumerate(ARMS) for rep in range(r) for fold in range(k)]
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    (root / "study.yaml").write_text(yaml.safe_dump({"name": "null", "seed": 0, "compare": {"baseline": "b"}}))
    return root


def shown_tests(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every test compare shows with a p-value for arm a (and Friedman), by name."""
    shown = {name: t for name, t in comparison["arms"][0]["tests"].items() if isinstance(t, dict) and "pvalue" in t}
    if comparison["friedman"] and "pvalue" in comparison["friedman"]:
        shown["friedman"] = comparison["friedman"]
    return shown


def test_within_a_dataset_only_tests_that_hold_their_level_are_shown_as_significance_tests(tmp_path: Path) -> None:
    """Old behaviour: Wilcoxon and Friedman on the per-repeat means were shown as tests (no scope); they reject
    in ~0.6 and ~0.8 of these null designs at r = 10. A test shown without a scope must hold ALPHA in every
    cell; the others must say what they are (conditional on this dataset, or reference only)."""
    rng = np.random.default_rng(26)
    conditional_rates: dict[str, float] = {}
    for k, r in GRID:
        scores = null_cv_scores(rng, DESIGNS, k, r)
        rates = rejection_rates(scores, k)
        comparison = compare_run(write_run(tmp_path / f"{k}x{r}", scores[0]))
        shown = shown_tests(comparison.__dict__ | {"arms": [a.__dict__ for a in comparison.arms]})
        corrected, *_ = _bayes(scores[:1], k)
        assert shown["corrected_t"]["pvalue"] == pytest.approx(corrected[0])  # the simulation computes compare's test
        blocks = _blocks(scores[:1])[0]
        assert shown["friedman"]["n"] == len(blocks)  # the same blocks as compare's
        if r == 1:  # (per-repeat means: summation order can break ties between arms differently)
            assert shown["friedman"]["statistic"] == pytest.approx(stats.friedmanchisquare(*blocks.T).statistic)
        for name, test in shown.items():
            if "scope" in test:  # labelled: conditional on this dataset, or reference only
                assert "conditional on this dataset" in test["scope"] or "reference only" in test["scope"]
                conditional_rates[f"{name} k={k} r={r}"] = rates[name]
            else:  # shown as a significance test: must hold its level (a new test needs a rate here)
                assert rates[name] <= ALPHA + MARGIN, f"{name} rejects {rates[name]:.3f} of null designs at k={k}, r={r}"
    assert conditional_rates["wilcoxon k=5 r=10"] > 0.3 and conditional_rates["friedman k=5 r=10"] > 0.5  # the labels are needed


def test_within_a_dataset_a_false_better_or_worse_is_rare() -> None:
    """The Bayesian correlated t's verdict at the harness's thresholds: <= 5 % false better/worse in every cell,
    and every false call is also a corrected-t rejection at ALPHA (P(a - b > rope) >= 0.975 implies a one-sided
    p <= 0.025), so the verdict errs at most as often as the corrected t. The old rule (0.95 per side) called
    differences the corrected t did not reject: two one-sided decisions at 5 % each."""
    rng = np.random.default_rng(262)
    rates, old_beyond_t = [], 0
    for k, r in GRID:
        scores = null_cv_scores(rng, DESIGNS, k, r)
        corrected, above, _, below = _bayes(scores, k)
        called = false_calls(scores, k)
        rates.append(float(np.mean(called)))
        assert not np.any(called & (corrected >= ALPHA))
        old_beyond_t += int(np.sum((np.maximum(above, below) >= 0.95) & (corrected >= ALPHA)))
        first = bayesian_correlated_ttest(scores[0, ..., 0].ravel(), scores[0, ..., 1].ravel(), test_train_ratio=1 / (k - 1),
                                          rope=ROPE)
        assert first.p_a_better == pytest.approx(above[0])  # the simulation computes the harness's posterior
    assert max(rates) <= ALPHA + MARGIN, rates
    assert old_beyond_t > 0


@pytest.mark.parametrize("datasets", [5, 8, 12])
def test_across_datasets_a_false_better_or_worse_is_rare(datasets: int) -> None:
    """Per-dataset mean differences symmetric around 0 and ten times the rope (the hardest case for the rope).
    The Bayesian signed-rank alone at 0.975 called a difference in 7-13 % of these designs (at 0.95: 11-18 %);
    with the Wilcoxon gate of compare_across the false better/worse rate is <= ALPHA."""
    rng = np.random.default_rng(datasets)
    designs, calls, bayes_alone = 300, 0, 0
    for design in range(designs):
        scores = pd.DataFrame({"a": 0.7 + rng.normal(0, 10 * ROPE, datasets), "b": np.full(datasets, 0.7)})
        item = compare_across(scores, "b", metric="accuracy", higher_is_better=True, alpha=ALPHA, rope=ROPE,
                              seed=design, samples=2000)["arms"][0]
        calls += item["verdict"] in ("better", "worse")
        bayes_alone += max(item["bayes"]["p_a_better"], item["bayes"]["p_b_better"]) >= 0.975
    assert calls / designs <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / designs)
    if datasets == 5:
        assert calls == 0  # 5 datasets cannot reach p < 0.05 (minimum Wilcoxon p 0.0625)
        assert bayes_alone / designs > ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / designs)  # the gate is needed


def test_a_difference_equal_on_a_few_folds_is_not_a_verdict(tmp_path: Path) -> None:
    """Small folds and a quantized metric: with 24 samples and 2 folds the two fold differences were equal (and
    non-zero) in ~10 % of null designs, and the point-mass posterior called them better/worse with probability
    1.000 (a false call in 0.11 of designs, the verdict's error at twice its stated 5 %)."""
    rng = np.random.default_rng(2402)
    k, r, n = 2, 1, 24
    scores = null_cv_scores(rng, DESIGNS, k, r, n=n)
    calls = raw = 0
    for design in scores:
        bayes = bayesian_correlated_ttest(design[..., 0].ravel(), design[..., 1].ravel(), test_train_ratio=1 / (k - 1),
                                          rope=ROPE)
        chance = bayes.scale == 0 and constant_may_be_chance(bayes.n, ALPHA)  # what compare's verdict checks
        calls += bayes.verdict() in ("better", "worse") and not chance
        raw += bayes.verdict() in ("better", "worse")
    assert calls / DESIGNS <= ALPHA + MARGIN < raw / DESIGNS
    design = np.array([[[0.75, 0.5, 0.5], [0.75, 0.5, 0.5]]])  # (r, k, arms): a - b = 0.25 on both folds
    comparison = compare_run(write_run(tmp_path / "constant", design))
    item = comparison.arms[0]
    assert item.tests["bayes"]["p_a_better"] == 1.0 and item.verdict == "inconclusive"
    assert "on each of the 2 paired scores" in item.verdict_text


@pytest.mark.parametrize(("k", "r"), [(5, 10), (10, 5)])
def test_stop_when_settled_holds_its_level_on_these_null_designs(k: int, r: int) -> None:
    """The sequential rule's own simulations draw from the corrected t's model; here the same looks run on the
    sample-level designs above (a dataset-shared arm shift, per-repeat splits). Measured 2026-12-04 with 1000
    designs: 0.032 (5 x 10) and 0.043 (10 x 5) at rope 0, 0.021 and 0.029 at rope 0.01."""
    d = (lambda s: s[..., 0] - s[..., 1])(null_cv_scores(np.random.default_rng(k * 100 + r), DESIGNS, k, r))
    ratio = 1 / (k - 1)
    bounds = seq.t_boundaries(k, r, ratio, ALPHA)
    decisions = np.zeros(DESIGNS, dtype=int)
    for look in range(1, r + 1):
        code = seq.decide_arrays(d[:, :look].reshape(DESIGNS, -1), ratio, float(bounds[look - 1]), 0.0, look == r)[0]
        decisions = np.where(decisions == 0, code, decisions)
    assert np.isin(decisions, [1, 2]).mean() <= ALPHA + MARGIN


@pytest.mark.parametrize(("k", "r"), [(4, 1), (5, 3), (10, 3)])
def test_the_settings_interaction_test_holds_its_level_on_these_null_designs(k: int, r: int) -> None:
    """Settings' interaction test (Hotelling T^2, corrected covariance) beyond its own model: two arms x three
    settings, each a separate model with its own dataset-shared shift. Measured 2026-12-04 with 400 designs:
    0.028-0.043."""
    scores = null_cv_scores(np.random.default_rng(270 + k * 10 + r), DESIGNS, k, r, arms=6)
    d = (scores[..., 1::2] - scores[..., 0::2]).reshape(DESIGNS, r * k, 3)  # cells x settings, arm - baseline
    rejected = [interaction_test(x, test_train_ratio=1 / (k - 1))["pvalue"] < ALPHA for x in d]
    assert np.mean(rejected) <= ALPHA + MARGIN

