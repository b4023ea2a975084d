"""Across-dataset tests against reference values: scipy (Wilcoxon, Friedman), baycomp (Bayesian signed-rank),
Demšar (2006)'s Nemenyi table and worked example."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness.stats import nemenyi_cd
from harness.stats.across import (
    bayesian_signed_rank,
    compare_across,
    format_across,
)

A = np.array([0.81, 0.74, 0.90, 0.66, 0.79, 0.85, 0.71, 0.93])
B = np.array([0.78, 0.75, 0.86, 0.61, 0.77, 0.80, 0.72, 0.88])


def _scores(*columns: np.ndarray, names: str = "base se eca cbam") -> pd.DataFrame:
    return pd.DataFrame({n: c for n, c in zip(names.split(), columns, strict=False)},
                        index=[f"d{i}" for i in range(len(columns[0]))])


C = A - np.array([0.012, -0.02, 0.015, -0.006, 0.022, -0.011, 0.004, 0.009])  # mixed signs: no near-certainty


@pytest.mark.parametrize("rope", [0.0, 0.005, 0.01])
def test_bayesian_signed_rank_matches_baycomp(rope: float) -> None:
    """baycomp.SignedRankTest(x, y): left = P(x better), right = P(y better); same prior (0.5), Monte-Carlo both."""
    baycomp = pytest.importorskip("baycomp")
    ours = bayesian_signed_rank(A, C, rope=rope, samples=20_000, seed=1)
    ref = baycomp.SignedRankTest.probs(C, A, rope=rope, nsamples=20_000, random_state=2)
    assert 0.05 < max(ref) < 0.95  # probabilities between the extremes, where a wrong formula shows
    if rope == 0:  # (two independent 20,000-draw estimates: sd of their difference < 0.005)
        assert ours.p_rope == 0.0
        assert ours.p_a_better == pytest.approx(ref[1], abs=0.015)
    else:
        assert (ours.p_b_better, ours.p_rope, ours.p_a_better) == pytest.approx(tuple(ref), abs=0.015)


def test_bayesian_signed_rank_direction_seed_and_rope() -> None:
    better = bayesian_signed_rank(A, B, rope=0.01, seed=3)
    assert better == bayesian_signed_rank(A, B, rope=0.01, seed=3)  # seeded: reproducible
    loss = bayesian_signed_rank(-A, -B, rope=0.01, seed=3, higher_is_better=False)
    assert (loss.p_a_better, loss.p_b_better) == (better.p_a_better, better.p_b_better)
    swapped = bayesian_signed_rank(B, A, rope=0.01, seed=3)
    assert swapped.p_b_better == pytest.approx(better.p_a_better, abs=0.01)
    wide = bayesian_signed_rank(A, B, rope=0.5, seed=3)  # every difference inside the rope
    assert wide.p_rope == 1.0 and wide.verdict() == "equivalent"


def test_wilcoxon_over_datasets_is_scipys() -> None:
    across = compare_across(_scores(B, A), "base", metric="accuracy", higher_is_better=True, samples=2000)
    wil = across["arms"][0]["wilcoxon"]
    ref = stats.wilcoxon(A - B)
    assert (wil["statistic"], wil["pvalue"], wil["n"]) == pytest.approx((ref.statistic, ref.pvalue, 8))
    assert across["arms"][0]["better_on"] == ["d0", "d2", "d3", "d4", "d5", "d7"]


def test_too_few_datasets_give_no_p_value_but_say_why() -> None:
    across = compare_across(_scores(B[:3], A[:3]), "base", metric="accuracy", higher_is_better=True, samples=2000)
    item = across["arms"][0]
    assert "pvalue" not in item["wilcoxon"]
    assert "cannot reach p < 0.05" in item["wilcoxon"]["error"] and "6 datasets" in item["wilcoxon"]["error"]
    assert item["sentence"].startswith("se better on 2 of 3 datasets (mean accuracy); across datasets ")
    assert "P(" in item["sentence"]
    assert "2 (the signed-rank" in across["friedman"]["error"]
    assert "3 or more arms" in across["cd_diagram"]
    assert "Wilcoxon: with 3 dataset(s)" in format_across(across)


def test_friedman_and_ranks_are_scipys_with_nemenyi() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.9, 12)
    columns = [base, base + 0.03 + rng.normal(0, 0.01, 12), base + 0.01 + rng.normal(0, 0.02, 12), base - 0.02]
    across = compare_across(_scores(*columns), "base", metric="accuracy", higher_is_better=True, samples=2000)
    fr = across["friedman"]
    ref = stats.friedmanchisquare(*columns)
    assert (fr["statistic"], fr["pvalue"]) == pytest.approx((ref.statistic, ref.pvalue))
    ranks = stats.rankdata(-np.column_stack(columns), axis=1).mean(axis=0)
    assert list(fr["mean_ranks"].values()) == pytest.approx(list(ranks))
    assert fr["critical_difference"] == pytest.approx(nemenyi_cd(4, 12))
    assert fr["nemenyi"] == {arm: abs(fr["mean_ranks"][arm] - fr["mean_ranks"]["base"]) > fr["critical_difference"]
                             for arm in ("se", "eca", "cbam")}
    assert fr["nemenyi"]["se"] and "note" not in fr and across["cd_diagram"] == ""
    loss = compare_across(-_scores(*columns), "base", metric="loss", higher_is_better=False, samples=2000)
    assert loss["friedman"]["mean_ranks"] == pytest.approx(fr["mean_ranks"])  # lower is better: same ranks


def test_nemenyi_matches_demsars_table_and_worked_example() -> None:
    """Demšar (2006), Table 5(a): q_0.05 for k = 2..10; section 3.2.2: k = 4 classifiers on N = 14 data sets
    give CD = 2.569 sqrt(4 * 5 / (6 * 14)) = 1.25 (and 1.12 at alpha = 0.10, q_0.10 = 2.291)."""
    table = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for k, q in enumerate(table, start=2):
        assert nemenyi_cd(k, 1) / math.sqrt(k * (k + 1) / 6) == pytest.approx(q, abs=1e-3)
    assert round(nemenyi_cd(4, 14), 2) == 1.25
    assert round(nemenyi_cd(4, 14, alpha=0.10), 2) == 1.12


def test_dataset_without_a_score_is_left_out_and_named() -> None:
    scores = _scores(B, A)
    scores.loc["d1", "se"] = math.nan
    across = compare_across(scores, "base", metric="accuracy", higher_is_better=True, samples=2000)
    assert across["dropped"] == ["d1"] and across["arms"][0]["datasets"] == 7
    assert "left out" in format_across(across)
