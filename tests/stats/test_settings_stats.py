"""The across-settings statistics: the interaction test's level and power under correlated CV-like scores
(numpy simulations, seconds), its agreement with the corrected t for two settings, and the robustness summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from harness.run.analysis import compare_run, load_run
from harness.stats._tests import corrected_ttest
from harness.stats.settings import (
    analyse_settings,
    clinician_sentence,
    holm_across_settings,
    holm_gated,
    interaction_test,
    robustness,
)

ALPHA = 0.05
SIMS = 2000
MARGIN = 3 * np.sqrt(ALPHA * (1 - ALPHA) / SIMS)  # three Monte-Carlo standard errors


def cv_scores(rng: np.random.Generator, means: np.ndarray, *, folds: int, repeats: int, sd: float = 0.02,
              across_repeats: bool = True) -> np.ndarray:
    """arms x settings x cells scores like repeated k-fold CV: a fold difficulty shared by every arm and setting, an
    arm x fold effect shared by the settings, and per arm x setting noise whose cells are correlated (rho = 1/k, as
    overlapping training sets make them) across all cells, or only within a repeat (``across_repeats=False``)."""
    arms, settings = means.shape
    n, rho = folds * repeats, 1 / folds
    fold = rng.normal(0, 2 * sd, n)
    arm_fold = rng.normal(0, sd, (arms, 1, n))
    shared = rng.normal(0, 1, (arms, settings, 1 if across_repeats else repeats))
    shared = shared if across_repeats else np.repeat(shared, folds, axis=2)
    noise = sd * (np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.normal(0, 1, (arms, settings, n)))
    return means[:, :, None] + fold + arm_fold + noise


def rejection_rate(means: np.ndarray, *, folds: int, repeats: int, seed: int, across_repeats: bool = True) -> float:
    rng = np.random.default_rng(seed)
    ratio = 1 / (folds - 1)
    rejected = 0
    for _ in range(SIMS):
        x = cv_scores(rng, means, folds=folds, repeats=repeats, across_repeats=across_repeats)
        result = interaction_test((x[1] - x[0]).T, test_train_ratio=ratio)
        rejected += result["pvalue"] < ALPHA
    return rejected / SIMS


# no interaction: the arms differ (by 2 points) and the settings differ (a lot), but the difference is the same
NULL = np.array([[0.80, 0.70, 0.60], [0.82, 0.72, 0.62]])


@pytest.mark.parametrize(("folds", "repeats", "across"), [(5, 2, True), (3, 3, True), (5, 3, False), (10, 1, True)])
def test_interaction_test_holds_its_level_without_interaction(folds: int, repeats: int, across: bool) -> None:
    rate = rejection_rate(NULL, folds=folds, repeats=repeats, seed=folds * 10 + repeats, across_repeats=across)
    assert rate <= ALPHA + MARGIN, rate


def test_a_plain_test_ignoring_the_fold_correlation_would_not() -> None:
    """The correction matters: the same contrasts with variance / n (independent cells) reject far too often."""
    rng = np.random.default_rng(3)
    rejected = sum(interaction_test((x[1] - x[0]).T, test_train_ratio=1e-9)["pvalue"] < ALPHA
                   for x in (cv_scores(rng, NULL, folds=5, repeats=4) for _ in range(1000)))
    assert rejected / 1000 > 2 * ALPHA


def test_interaction_test_has_power_against_a_real_interaction() -> None:
    """SE 10 points ahead at the first setting only (the seed project's lr 0.1 pattern): detected."""
    interaction = np.array([[0.70, 0.80, 0.80], [0.80, 0.80, 0.80]])
    assert rejection_rate(interaction, folds=5, repeats=2, seed=11) > 0.8


def test_two_settings_is_the_corrected_t_on_the_difference_of_differences() -> None:
    rng = np.random.default_rng(0)
    d = rng.normal(0, 0.02, (10, 2)) + [0.0, 0.01]
    result = interaction_test(d, test_train_ratio=0.25)
    t = corrected_ttest(d[:, 1], d[:, 0], test_train_ratio=0.25)
    assert result["pvalue"] == pytest.approx(t.pvalue) and result["f"] == pytest.approx(t.statistic**2)
    assert result["df"] == [1, 9]


def test_the_reference_setting_does_not_change_the_statistic() -> None:
    """Hotelling's T^2 is invariant to which setting the contrasts are taken against."""
    rng = np.random.default_rng(1)
    d = rng.normal(0, 0.02, (9, 3)) + [0.0, 0.01, -0.02]
    first = interaction_test(d, test_train_ratio=0.5)
    last = interaction_test(d[:, [2, 0, 1]], test_train_ratio=0.5)
    assert first["statistic"] == pytest.approx(last["statistic"]) and first["pvalue"] == pytest.approx(last["pvalue"])


def test_too_few_cells_or_no_variance_give_a_reason_not_a_p_value() -> None:
    assert "the test of 3 settings needs at least 3" in interaction_test(np.array([[0.1, 0.2, 0.0], [0.2, 0.1, 0.0]]), test_train_ratio=0.5)["error"]
    assert "identical under every setting" in interaction_test(np.zeros((6, 2)), test_train_ratio=0.5)["error"]


def test_robustness_finds_each_arms_worst_setting_and_compares_them() -> None:
    cells = pd.MultiIndex.from_product([[0, 1], [0, 1, 2]], names=["repeat", "fold"])
    rng = np.random.default_rng(2)
    noise = lambda: rng.normal(0, 0.005, 6)  # noqa: E731
    scores = {"lr-0.1": pd.DataFrame({"plain": 0.60 + noise(), "se": 0.75 + noise()}, index=cells),
              "lr-0.01": pd.DataFrame({"plain": 0.80 + noise(), "se": 0.80 + noise()}, index=cells)}
    rob = robustness(scores, "se", "plain", higher_is_better=True, test_train_ratio=0.5)
    assert rob["se"]["worst_setting"] == rob["plain"]["worst_setting"] == "lr-0.1"
    assert rob["se"]["spread"]["estimate"] == pytest.approx(0.05, abs=0.02)
    worst = rob["vs_baseline"]["worst_difference"]
    assert worst["estimate"] == pytest.approx(0.15, abs=0.02) and worst["low"] > 0
    assert rob["vs_baseline"]["spread_difference"]["high"] < 0  # se varies less across the settings
    assert "above 0" in rob["sentence"]
    lower = robustness(scores, "se", "plain", higher_is_better=False, test_train_ratio=0.5)
    assert lower["se"]["worst_setting"] == "lr-0.01"  # lower is better: the highest mean is the worst


def test_clinician_sentence_names_the_dependence_and_each_setting() -> None:
    per = {"lr-0.1": {"difference": 0.102, "verdict": "better", "bayes": {"p_a_better": 0.993, "p_rope": 0.0}},
           "lr-0.001": {"difference": 0.001, "verdict": "equivalent", "bayes": {"p_a_better": 0.01, "p_rope": 0.97}}}
    text = clinician_sentence("se", "plain", "lr", per, {"pvalue": 0.001}, ALPHA, 1.0)
    assert text.startswith("se's advantage over plain depends on the lr (interaction p 0.001)")
    assert "+10.2 points (P 0.99) at lr-0.1" in text and "none (+0.1 points, P(equivalent) 0.97) at lr-0.001" in text
    assert "no detectable dependence" in clinician_sentence("se", "plain", "lr", per, {"pvalue": 0.4}, ALPHA, 1.0)


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_the_spread_is_the_difference_of_the_setting_means_not_inflated_by_noise(higher_is_better: bool) -> None:
    """Two settings of equal true score: the spread is best mean - worst mean (near 0 here). The per-cell
    |best - worst| it used to average grew with the cell noise (0.025 here), so a noisier arm looked less robust."""
    cells = pd.MultiIndex.from_product([[0, 1, 2, 3], [0, 1, 2, 3, 4]], names=["repeat", "fold"])
    rng = np.random.default_rng(4)
    scores = {s: pd.DataFrame({"plain": 0.8 + rng.normal(0, 0.002, 20), "se": 0.8 + rng.normal(0, 0.03, 20)},
                              index=cells) for s in ("a", "b")}
    rob = robustness(scores, "se", "plain", higher_is_better=higher_is_better, test_train_ratio=0.25)
    means = rob["se"]["means"]
    assert rob["se"]["spread"]["estimate"] == pytest.approx(abs(means["a"] - means["b"]))
    assert rob["se"]["spread"]["estimate"] < 0.015



def _setting_run(root: Path, differences: np.ndarray, folds: int) -> Path:
    """A run directory compare reads: arms 'plain' and 'se' = plain + differences, (repeat, fold) cells."""
    root.mkdir(parents=True)
    plain = 0.7 + 0.01 * np.sin(np.arange(len(differences)))
    rows = [{"arm": arm, "repeat": i // folds, "fold": i % folds, "status": "ok", "n_train": 80, "n_val": 20,
             "accuracy": v + (d if arm == "se" else 0.0)}
            for arm in ("plain", "se") for i, (v, d) in enumerate(zip(plain, differences, strict=True))]
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    (root / "study.yaml").write_text(yaml.safe_dump({"name": "s", "seed": 0, "compare": {"baseline": "plain", "rope": 0.0}}))
    return root


def test_a_setting_verdict_needs_holm_across_settings(tmp_path: Path) -> None:
    """Three settings: se 'better' at one with corrected-t p ~0.03 (P(better) > 0.975 there) and nothing elsewhere.
    Holm over the three settings gives p ~0.09: the across-settings verdict and sentence say inconclusive (a false
    better at some setting is otherwise up to three times as likely as at one)."""
    z = np.random.default_rng(7).standard_normal(10)
    z = (z - z.mean()) / z.std(ddof=1)
    shape = {"lr-0.1": 0.02 * (z + 2.6 * np.sqrt(0.35)), "lr-0.01": 0.02 * z, "lr-0.001": 0.02 * z[::-1]}
    comparisons, tables = {}, {}
    for sid, d in shape.items():
        run = _setting_run(tmp_path / sid, d, folds=5)
        comparisons[sid], tables[sid] = compare_run(run), load_run(run).table()
    assert comparisons["lr-0.1"].arms[0].verdict == "better"  # at this setting alone
    p = comparisons["lr-0.1"].arms[0].tests["corrected_t"]["pvalue"]
    assert 0.05 / 3 < p < 0.05
    analysis = analyse_settings(comparisons, tables, axis="lr", span=1.0, bounds=(0.0, 1.0))
    item = analysis["arms"][0]["per_setting"]["lr-0.1"]
    assert item["verdict"] == "inconclusive" and item["holm_p"] == pytest.approx(min(1.0, 3 * p))
    assert "Holm" in item["verdict_note"] and "Holm" in item["verdict_text"]
    assert "inconclusive after Holm across settings" in analysis["arms"][0]["sentence"]


def test_per_setting_false_better_or_worse_in_any_setting_is_rare() -> None:
    """Null over three settings (no difference anywhere; per-setting differences correlated across cells with
    rho = 1/k, as the corrected t assumes): the share of designs with a better/worse verdict at some setting,
    before (~0.14: three chances at 5 %) and after the Holm gate (the verdict's definition with rope 0)."""
    rng = np.random.default_rng(12)
    folds, repeats, sims, settings = 5, 2, 4000, 3
    n, ratio, rho = folds * repeats, 1 / (folds - 1), 1 / folds
    d = np.sqrt(rho) * rng.standard_normal((sims, 1, settings)) + np.sqrt(1 - rho) * rng.standard_normal((sims, n, settings))
    t = d.mean(1) / np.sqrt((1 / n + ratio) * d.var(1, ddof=1))
    p = 2 * stats.t.sf(np.abs(t), n - 1)
    critical = stats.t.isf(0.025, n - 1)  # P(better) >= 0.975 with rope 0
    raw = np.where(t >= critical, "better", np.where(t <= -critical, "worse", "inconclusive"))
    order = np.argsort(p, axis=1)  # Holm, vectorised: running max of (settings - rank) x sorted p, capped at 1
    steps = np.maximum.accumulate(np.take_along_axis(p, order, 1) * np.arange(settings, 0, -1), axis=1)
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, np.minimum(steps, 1.0), 1)
    first = holm_across_settings({str(s): float(p[0, s]) for s in range(settings)})
    assert [first[str(s)] for s in range(settings)] == pytest.approx(adjusted[0])  # the harness's Holm
    called = np.flatnonzero((raw != "inconclusive").any(1))
    gated = sum(any(holm_gated(str(raw[i, s]), float(adjusted[i, s]), ALPHA)[0] != "inconclusive"
                    for s in range(settings)) for i in called)
    margin = 3 * np.sqrt(ALPHA * (1 - ALPHA) / sims)
    assert len(called) / sims > 2 * ALPHA  # the gate is needed
    assert gated / sims <= ALPHA + margin
