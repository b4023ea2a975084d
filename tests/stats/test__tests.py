"""Statistics pinned to published reference values and to independent hand derivations."""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pytest

from harness.stats import (
    StatsError,
    bayesian_correlated_ttest,
    bonferroni,
    cliffs_delta,
    cohens_dz,
    corrected_ttest,
    effect_sizes,
    friedman,
    holm,
    mcnemar,
    min_wilcoxon_p,
    nemenyi_cd,
    paired_ttest,
    wilcoxon,
)

# The 4-class ultrasound project's published per-fold accuracies (4 folds, n_test/n_train = 1/3).
NO_SE = [0.8867491079720417, 0.8888019942323672, 0.8866024732391613, 0.8881176988122587]
SE = [0.8850383694217704, 0.8843540740016619, 0.8831321178943252, 0.8847450999560096]


def _t3_cdf(t: float) -> float:
    """Closed-form CDF of Student's t with 3 df (no scipy): 1/2 + (1/pi)(u/(1+u^2) + atan u), u = t/sqrt 3."""
    u = t / math.sqrt(3)
    return 0.5 + (u / (1 + u * u) + math.atan(u)) / math.pi


class TestPublishedFourFoldAccuracies:
    """Expected values derived independently with the stdlib and the closed-form t(3) CDF.

    d = no-SE - SE = [0.0017107, 0.0044479, 0.0034704, 0.0033726]: mean 0.00325040, sd 0.00113548.
    Plain paired t = mean / (sd / sqrt 4) = 5.7252 on 3 df -> p = 0.01058 (anti-conservative).
    Corrected t divides by sqrt((1/4 + 1/3) sd^2) instead: 5.7252 * sqrt(0.25 / 0.58333) = 3.7480,
    p = 0.03316 - the difference *is* significant at 0.05 once the fold correlation is accounted for,
    contrary to the project's untested "no significant difference" claim.
    Wilcoxon: all 4 differences share a sign, W = 0, exact two-sided p = 2 / 2^4 = 0.125, which is
    also the smallest p any 4-pair rank test can reach - it could never have shown significance.
    Bayesian correlated t: posterior t(3, 0.0032504, sqrt(7/12) * sd = 0.00086723); with a rope of
    1 point, P(|diff| < 0.01) = F((0.01 - m)/s) - F((-0.01 - m)/s) = 0.99749 -> practically equivalent.
    """

    d = [a - b for a, b in zip(NO_SE, SE, strict=True)]
    mean = statistics.mean(d)
    sd = statistics.stdev(d)

    def test_harness_reads_the_differences_as_derived_by_hand(self) -> None:
        """The harness's own mean difference, sd (through d_z) and posterior scale equal the docstring's numbers."""
        posterior = bayesian_correlated_ttest(NO_SE, SE, test_train_ratio=1 / 3, rope=0.01)
        assert posterior.mean == pytest.approx(0.0032504032455, rel=1e-9) == pytest.approx(self.mean, rel=1e-12)
        assert posterior.scale == pytest.approx(0.00086723, rel=1e-5)  # sqrt(7/12) * sd
        assert (posterior.n, posterior.df) == (4, 3)
        assert cohens_dz(NO_SE, SE) == pytest.approx(0.0032504032455 / 0.00113548, rel=1e-5)
        assert cohens_dz(SE, NO_SE) == pytest.approx(-cohens_dz(NO_SE, SE), rel=1e-12)

    def test_paired_t(self) -> None:
        t = self.mean / (self.sd / 2)
        result = paired_ttest(NO_SE, SE)
        assert result.statistic == pytest.approx(t, rel=1e-10) == pytest.approx(5.7252, abs=1e-4)
        assert result.pvalue == pytest.approx(2 * (1 - _t3_cdf(t)), rel=1e-8)
        assert result.pvalue == pytest.approx(0.010577, abs=1e-6)
        assert result.df == 3 and "anti-conservative" in result.assumption

    def test_corrected_t(self) -> None:
        t = self.mean / math.sqrt((1 / 4 + 1 / 3) * self.sd**2)
        result = corrected_ttest(NO_SE, SE, test_train_ratio=1 / 3)
        assert result.statistic == pytest.approx(t, rel=1e-10) == pytest.approx(3.7480, abs=1e-4)
        assert result.pvalue == pytest.approx(2 * (1 - _t3_cdf(t)), rel=1e-8)
        assert result.pvalue == pytest.approx(0.033162, abs=1e-6)

    def test_wilcoxon_cannot_reach_significance(self) -> None:
        result = wilcoxon(NO_SE, SE)
        assert result.statistic == 0 and result.pvalue == pytest.approx(0.125)
        assert min_wilcoxon_p(4) == 0.125
        assert "minimum attainable two-sided p with n = 4 is 0.125" in result.assumption

    def test_bayesian_correlated_t(self) -> None:
        scale = math.sqrt(1 / 4 + 1 / 3) * self.sd
        result = bayesian_correlated_ttest(NO_SE, SE, test_train_ratio=1 / 3, rope=0.01)
        assert result.scale == pytest.approx(scale, rel=1e-10)
        assert result.p_b_better == pytest.approx(_t3_cdf((-0.01 - self.mean) / scale), rel=1e-8)
        assert result.p_a_better == pytest.approx(1 - _t3_cdf((0.01 - self.mean) / scale), rel=1e-6)
        assert result.p_rope == pytest.approx(0.99749, abs=1e-5)
        assert result.verdict() == "equivalent"
        narrow = bayesian_correlated_ttest(NO_SE, SE, test_train_ratio=1 / 3, rope=0.001)
        assert narrow.p_a_better == pytest.approx(1 - _t3_cdf((0.001 - self.mean) / scale), rel=1e-8)
        assert narrow.p_a_better == pytest.approx(0.95964, abs=1e-5)
        assert narrow.verdict() == "inconclusive"  # "better" needs P >= 0.975 per side (two-sided 5 %)
        exact = bayesian_correlated_ttest(NO_SE, SE, test_train_ratio=1 / 3, rope=0.0)
        # with no rope, P(worse) is the corrected t's one-sided p: 0.03316 / 2, so "better" at 0.975 <-> p < 0.05
        assert exact.p_b_better == pytest.approx(0.03316 / 2, abs=1e-5) and exact.verdict() == "better"


def test_mcnemar_r_documentation_example() -> None:
    """R's ?mcnemar.test example (Agresti 1990, p. 350, presidential approval):
    matrix(c(794, 86, 150, 570), 2) -> McNemar's chi-squared = 16.818, df = 1, p-value = 4.115e-05."""
    counts = {(1, 1): 794, (1, 0): 150, (0, 1): 86, (0, 0): 570}  # (first correct, second correct)
    y, a, b = [], [], []
    for (ca, cb), n in counts.items():
        y += [1] * n
        a += [1 if ca else 0] * n
        b += [1 if cb else 0] * n
    result = mcnemar(y, a, b)
    assert result.statistic == pytest.approx(16.818, abs=5e-4)
    assert result.pvalue == pytest.approx(4.115e-05, rel=1e-3)
    assert result.df == 1 and "continuity" in result.assumption


def test_mcnemar_exact_when_few_discordant() -> None:
    y = np.zeros(20, dtype=int)
    a = np.zeros(20, dtype=int)
    b = np.r_[np.ones(8, dtype=int), np.zeros(12, dtype=int)]  # b wrong on 8, a never wrong: b+c = 8
    result = mcnemar(y, a, b)
    assert "exact" in result.assumption
    assert result.pvalue == pytest.approx(2 / 2**8)  # two-sided binomial, all 8 one way


def test_holm_and_bonferroni_match_r_multtest() -> None:
    """statsmodels' test_multi.py reference vector (pval0) and R multtest results (res_multtest1)."""
    pval0 = [0.838541367553, 0.642193923795, 0.680845947633, 0.967833824309, 0.71626938238,
             0.177096952723, 5.23656777208e-005, 0.0202732688798, 0.00028140506198, 0.0149877310796]
    h, b = holm(pval0), bonferroni(pval0)
    assert h[6] == pytest.approx(5.2365677720800005e-04)
    assert h[8] == pytest.approx(2.5326455578199999e-03)
    assert h[9] == pytest.approx(1.1990184863680001e-01)
    assert h[7] == pytest.approx(1.4191288215860001e-01)
    assert b[8] == pytest.approx(2.8140506197999998e-03)
    assert b[9] == pytest.approx(1.4987731079600000e-01)


def test_wilcoxon_scipy_docstring_example() -> None:
    """scipy.stats.wilcoxon docstring: Fisher's corn height differences -> statistic 24, p = 0.041259765625."""
    d = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75])
    result = wilcoxon(d, np.zeros_like(d))
    assert result.statistic == 24
    assert result.pvalue == pytest.approx(0.041259765625)


def test_friedman_scipy_docstring_example_and_nemenyi() -> None:
    """scipy.stats.friedmanchisquare docstring: statistic 10.571428...; with 2 df, p = exp(-x / 2).
    Nemenyi q_0.05 for k = 3 is 2.343 (Demšar 2006, Table 5a)."""
    before = [72, 96, 88, 92, 74, 76, 82]
    immediately_after = [120, 120, 132, 120, 101, 96, 112]
    five_min_after = [76, 95, 104, 96, 84, 72, 76]
    result = friedman({"before": before, "after": immediately_after, "five": five_min_after})
    assert result.statistic == pytest.approx(10.571428571428571)
    assert result.pvalue == pytest.approx(math.exp(-result.statistic / 2))
    assert result.mean_ranks["after"] == pytest.approx(1.0)
    assert nemenyi_cd(3, 7) == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 7)), abs=2e-3)
    assert nemenyi_cd(5, 10) == pytest.approx(2.728 * math.sqrt(5 * 6 / 60), abs=2e-3)


def test_effect_sizes() -> None:
    es = effect_sizes(NO_SE, SE)
    assert es.mean_difference_points == pytest.approx(0.32504, abs=1e-4)
    assert es.cohens_dz == pytest.approx(statistics.mean(TestPublishedFourFoldAccuracies.d) / statistics.stdev(TestPublishedFourFoldAccuracies.d))
    assert es.p_a_greater == 1.0
    assert cliffs_delta([1, 2, 3], [1, 2, 3]) == 0
    assert cliffs_delta([4, 5], [1, 2]) == 1


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [([0.9, 0.8], [0.9], "equal length"), ([0.9], [0.8], "at least 2"), ([0.5, 0.75], [0.25, 0.5], "variance is 0")],
)
def test_clear_errors(a: list[float], b: list[float], message: str) -> None:
    with pytest.raises(StatsError, match=message):
        corrected_ttest(a, b, test_train_ratio=0.25)


# -- degenerate inputs (issue 13 item 7) -------------------------------------------------------------


def test_differences_equal_up_to_rounding_are_not_t_2e14() -> None:
    """0.1 + 0.2 - 0.3 style rounding: old code gave t ~ 1e14 and Cohen's d ~ 1e14."""
    a = np.array([0.8166, 0.7333, 0.9, 0.6, 0.7512, 1 / 3, 0.1 + 0.2])
    b = a - 0.1
    d = a - b
    assert np.ptp(d) > 0  # really not constant in floating point
    with pytest.raises(StatsError, match="up to rounding"):
        corrected_ttest(a, b, test_train_ratio=0.25)
    assert cohens_dz(a, b) == math.inf
    assert cohens_dz(a, a + 1e-17) == 0.0
    bayes = bayesian_correlated_ttest(a, b, test_train_ratio=0.25, rope=0.01)
    assert bayes.p_a_better == 1.0 and bayes.verdict() == "better" and "point mass" in bayes.assumption


def test_identical_arms_give_p_rope_one_like_baycomp() -> None:
    a = [0.81, 0.79, 0.8, 0.83]
    result = bayesian_correlated_ttest(a, list(a), test_train_ratio=1 / 3, rope=0.01)
    assert (result.p_a_better, result.p_rope, result.p_b_better) == (0.0, 1.0, 0.0)
    assert result.verdict() == "equivalent"


def test_holm_ignores_nan_p_values() -> None:
    """Old code counted a NaN in the family (and returned NaN everywhere)."""
    adjusted = holm([0.01, np.nan, 0.04])
    assert np.isnan(adjusted[1])
    assert adjusted[[0, 2]] == pytest.approx(holm([0.01, 0.04]))
    assert adjusted[0] == pytest.approx(0.02)


def test_friedman_with_nan_is_an_explained_error() -> None:
    with pytest.raises(StatsError, match="b contain NaN"):
        friedman({"a": [1, 2, 3], "b": [1, np.nan, 2], "c": [3, 2, 1]})


def test_friedman_with_ties_in_every_block_is_an_explained_error() -> None:
    """Three arms that score alike on every fold (tiny runs that never learn): scipy returned chi2 = nan with a
    RuntimeWarning on stderr, and compare printed "Friedman chi2 = nan, p = nan"."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(StatsError, match="same on each of the 2 blocks"):
            friedman({"a": [0.5, 0.75], "b": [0.5, 0.75], "c": [0.5, 0.75]})
        partly_tied = friedman({"a": [0.5, 0.7, 0.9], "b": [0.5, 0.6, 0.8], "c": [0.5, 0.5, 0.7]})
    assert np.isfinite(partly_tied.statistic) and partly_tied.mean_ranks["a"] < partly_tied.mean_ranks["c"]


def test_friedman_lower_is_better_ranks() -> None:
    result = friedman({"a": [0.1, 0.2, 0.15], "b": [0.5, 0.6, 0.55], "c": [0.9, 0.8, 0.85]}, higher_is_better=False)
    assert result.mean_ranks == {"a": 1.0, "b": 2.0, "c": 3.0}


@pytest.mark.parametrize("ratio", [-0.25, 0.0, float("nan")])
def test_bad_ratio_is_a_stats_error(ratio: float) -> None:
    """Old code: a negative ratio escaped from the Bayesian test as a bare ValueError (math domain)."""
    with pytest.raises(StatsError, match="n_test / n_train > 0"):
        bayesian_correlated_ttest([0.8, 0.7, 0.9], [0.7, 0.7, 0.8], test_train_ratio=ratio, rope=0.01)


def test_wilcoxon_uses_scipys_method_choice_with_ties_and_zeros() -> None:
    from scipy import stats

    d = np.array([0.0, 0.01, 0.01, 0.02, -0.01, 0.03, 0.02, 0.0, 0.04, 0.01])
    result = wilcoxon(d, np.zeros_like(d))
    reference = stats.wilcoxon(d, zero_method="wilcox", method="auto")
    assert result.pvalue == pytest.approx(reference.pvalue) and result.statistic == reference.statistic
    assert result.n == 8 and "n = 8" in result.assumption and "2 zero difference(s) dropped" in result.assumption
    assert min_wilcoxon_p(8) == pytest.approx(2 / 256)


# -- intervals, power, clustered tests -----------------------------------------------------------------


def test_clustered_mcnemar_with_singletons_is_uncorrected_mcnemar() -> None:
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    from harness.stats import clustered_mcnemar

    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 200)
    a = np.where(rng.random(200) < 0.8, y, (y + 1) % 3)
    b = np.where(rng.random(200) < 0.7, y, (y + 1) % 3)
    ca, cb = a == y, b == y
    table = [[np.sum(ca & cb), np.sum(ca & ~cb)], [np.sum(~ca & cb), np.sum(~ca & ~cb)]]
    reference = sm_mcnemar(table, exact=False, correction=False)
    result = clustered_mcnemar(y, a, b, np.arange(200))
    assert result.statistic == pytest.approx(reference.statistic) and result.pvalue == pytest.approx(reference.pvalue)


# -- metrics (item 6) --------------------------------------------------------------------------------


def test_corrected_interval_hand_derivation() -> None:
    from harness.stats import corrected_interval

    x = np.array(NO_SE)
    ci = corrected_interval(x, test_train_ratio=1 / 3)
    half = 3.182446305284263 * math.sqrt((1 / 4 + 1 / 3) * statistics.variance(NO_SE))  # t_{0.975, 3}
    assert (ci.low, ci.high) == (pytest.approx(x.mean() - half), pytest.approx(x.mean() + half))
    clipped = corrected_interval([0.99, 1.0, 0.98, 1.0], test_train_ratio=1 / 3, bounds=(0.0, 1.0))
    assert clipped.high == 1.0 and "clipped" in clipped.method
