"""Hypothesis tests over paired per-fold scores and per-sample predictions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from harness.stats._results import BayesResult, FriedmanResult, StatsError, TestResult

ArrayLike = Sequence[float] | np.ndarray


def _paired(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise StatsError(f"paired scores must be two 1-D sequences of equal length, got {x.shape} and {y.shape}")
    if len(x) < 2:
        raise StatsError(f"need at least 2 paired scores (folds x repeats), got {len(x)}")
    if not np.all(np.isfinite(x) & np.isfinite(y)):
        raise StatsError("paired scores contain NaN or infinity (a diverged or failed fold?)")
    return x - y


def _t_from(d: np.ndarray, variance_factor: float, name: str, assumption: str) -> TestResult:
    n = len(d)
    var = float(np.var(d, ddof=1))
    if var == 0:
        raise StatsError(
            f"{name}: every paired difference equals {d[0]:.6g}, so their variance is 0 and t is undefined; "
            "the arms cannot be told apart by a t-test on these scores (identical predictions?)"
        )
    t = float(np.mean(d) / math.sqrt(variance_factor * var))
    return TestResult(name, t, float(2 * stats.t.sf(abs(t), n - 1)), n, n - 1, assumption)


def paired_ttest(a: ArrayLike, b: ArrayLike) -> TestResult:
    """Plain paired t over folds: anti-conservative for CV (folds share training data)."""
    d = _paired(a, b)
    return _t_from(d, 1 / len(d), "paired t",
                   "independent folds (false for cross-validation: anti-conservative)")


def corrected_ttest(a: ArrayLike, b: ArrayLike, *, test_train_ratio: float) -> TestResult:
    """Nadeau-Bengio corrected resampled t (Bouckaert-Frank with repeats): var x (1/n + n_test/n_train)."""
    if not test_train_ratio > 0:
        raise StatsError("test_train_ratio must be n_test / n_train > 0 (k-fold: 1 / (k - 1))")
    d = _paired(a, b)
    return _t_from(d, 1 / len(d) + test_train_ratio, "corrected t (Nadeau-Bengio)",
                   f"variance inflated by n_test/n_train = {test_train_ratio:.4g} for overlapping training sets")


def bayesian_correlated_ttest(a: ArrayLike, b: ArrayLike, *, test_train_ratio: float, rope: float) -> BayesResult:
    """Corani & Benavoli's correlated Bayesian t-test on a - b, with correlation rho = n_test / n.

    The posterior of the mean difference is Student-t with n - 1 df, location mean(d) and
    scale sqrt((1/n + rho / (1 - rho)) s^2); rho / (1 - rho) = n_test / n_train.
    """
    if rope < 0:
        raise StatsError("rope must be >= 0")
    d = _paired(a, b)
    n = len(d)
    var = float(np.var(d, ddof=1))
    if var == 0:
        raise StatsError("bayesian correlated t: all paired differences are equal (variance 0); "
                         "the posterior is degenerate")
    scale = math.sqrt((1 / n + test_train_ratio) * var)
    posterior = stats.t(df=n - 1, loc=float(np.mean(d)), scale=scale)
    below, above = float(posterior.cdf(-rope)), float(posterior.sf(rope))
    return BayesResult(above, max(0.0, 1 - above - below), below, rope, float(np.mean(d)), scale, n - 1, n,
                       f"correlation rho = {test_train_ratio / (1 + test_train_ratio):.4g}, flat prior")


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided exact Wilcoxon signed-rank p-value attainable with n pairs: 2 / 2^n."""
    return min(1.0, 2.0 / 2**n)


def wilcoxon(a: ArrayLike, b: ArrayLike) -> TestResult:
    """Wilcoxon signed-rank test (exact null distribution for small n, no ties/zeros)."""
    d = _paired(a, b)
    if np.all(d == 0):
        raise StatsError("wilcoxon: every paired difference is 0; there is nothing to rank")
    result = stats.wilcoxon(d, method="exact" if len(d) <= 50 and np.all(d != 0) else "auto")
    return TestResult("wilcoxon signed-rank", float(result.statistic), float(result.pvalue), len(d), None,
                      f"minimum attainable two-sided p with n = {len(d)} is {min_wilcoxon_p(len(d)):.4g}")


def mcnemar(y_true: ArrayLike, pred_a: ArrayLike, pred_b: ArrayLike, *, exact: bool | None = None) -> TestResult:
    """McNemar's test on per-sample correctness: exact binomial when b + c < 25, else corrected chi^2."""
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    y, pa, pb = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    if not (y.shape == pa.shape == pb.shape) or y.ndim != 1:
        raise StatsError(f"y_true, pred_a and pred_b must be 1-D of equal length, got {y.shape}, {pa.shape}, {pb.shape}")
    if len(y) == 0:
        raise StatsError("mcnemar: no samples")
    ca, cb = pa == y, pb == y
    b, c = int(np.sum(ca & ~cb)), int(np.sum(~ca & cb))
    use_exact = (b + c < 25) if exact is None else exact
    table = [[int(np.sum(ca & cb)), b], [c, int(np.sum(~ca & ~cb))]]
    result = sm_mcnemar(table, exact=use_exact, correction=True)
    assumption = (f"exact binomial on b={b}, c={c}" if use_exact
                  else f"chi^2 with continuity correction on b={b}, c={c}")
    return TestResult("mcnemar", float(result.statistic), float(result.pvalue), len(y), None if use_exact else 1, assumption)


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of mean ranks (Demšar 2006): q_alpha * sqrt(k (k + 1) / (6 n))."""
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def friedman(scores_by_arm: Mapping[str, ArrayLike], alpha: float = 0.05) -> FriedmanResult:
    """Friedman test over >= 3 arms (rows = folds) with mean ranks and the Nemenyi critical difference."""
    names = list(scores_by_arm)
    if len(names) < 3:
        raise StatsError(f"friedman needs at least 3 arms, got {len(names)}")
    matrix = np.column_stack([np.asarray(scores_by_arm[n], dtype=float) for n in names])
    if matrix.shape[0] < 2:
        raise StatsError("friedman needs at least 2 paired scores per arm")
    result = stats.friedmanchisquare(*matrix.T)
    ranks = stats.rankdata(-matrix, axis=1).mean(axis=0)  # rank 1 = best (highest score)
    return FriedmanResult(float(result.statistic), float(result.pvalue), matrix.shape[0], len(names),
                          dict(zip(names, map(float, ranks), strict=True)), nemenyi_cd(len(names), matrix.shape[0], alpha), alpha)


def _adjust(pvalues: ArrayLike, method: str) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return p
    if np.any((p < 0) | (p > 1)):
        raise StatsError("p-values must lie in [0, 1]")
    return np.asarray(multipletests(p, method=method)[1])


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error)."""
    return _adjust(pvalues, "holm")


def bonferroni(pvalues: ArrayLike) -> np.ndarray:
    """Bonferroni adjusted p-values."""
    return _adjust(pvalues, "bonferroni")
