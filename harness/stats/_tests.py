"""Hypothesis tests over paired per-fold scores and per-sample predictions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats

from harness.stats._results import BayesResult, FriedmanResult, StatsError, TestResult

ArrayLike = Sequence[float] | np.ndarray


RTOL = 1e-9  # differences below RTOL x the scores' magnitude are rounding, not signal


def _paired(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise StatsError(f"paired scores must be two 1-D sequences of equal length, got {x.shape} and {y.shape}")
    if len(x) < 2:
        raise StatsError(f"need at least 2 paired scores (folds x repeats), got {len(x)}")
    if not np.all(np.isfinite(x) & np.isfinite(y)):
        raise StatsError("paired scores contain NaN or infinity (a diverged or failed fold?)")
    return x - y


def tolerance(a: ArrayLike, b: ArrayLike) -> float:
    """Absolute size below which a difference of these scores is floating-point rounding."""
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-300)
    return RTOL * scale


def constant_difference(a: ArrayLike, b: ArrayLike) -> float | None:
    """The common value of a - b when every paired difference is equal up to rounding (0 if ~0), else None."""
    d = _paired(a, b)
    tol = tolerance(a, b)
    if float(np.ptp(d)) > tol:
        return None
    mean = float(np.mean(d))
    return 0.0 if abs(mean) <= tol else mean


def _t_from(d: np.ndarray, variance_factor: float, name: str, assumption: str, constant: float | None) -> TestResult:
    n = len(d)
    if constant is not None:
        raise StatsError(
            f"{name}: every paired difference equals {constant:.6g} (up to rounding), so their variance is 0 and t "
            "is undefined; " + ("the arms scored identically on every fold" if constant == 0 else
                                "the difference is the same on every fold (see the Bayesian verdict)")
        )
    var = float(np.var(d, ddof=1))
    t = float(np.mean(d) / math.sqrt(variance_factor * var))
    return TestResult(name, t, float(2 * stats.t.sf(abs(t), n - 1)), n, n - 1, assumption)


def check_ratio(test_train_ratio: float) -> float:
    """n_test / n_train must be a positive finite number (k-fold: 1 / (k - 1))."""
    if not (isinstance(test_train_ratio, (int, float)) and math.isfinite(test_train_ratio) and test_train_ratio > 0):
        raise StatsError(f"test_train_ratio must be n_test / n_train > 0 (k-fold: 1 / (k - 1)), got {test_train_ratio!r}")
    return float(test_train_ratio)


def paired_ttest(a: ArrayLike, b: ArrayLike) -> TestResult:
    """Plain paired t over folds: anti-conservative for CV (folds share training data)."""
    d = _paired(a, b)
    return _t_from(d, 1 / len(d), "paired t",
                   "independent folds (false for cross-validation: anti-conservative)", constant_difference(a, b))


def corrected_ttest(a: ArrayLike, b: ArrayLike, *, test_train_ratio: float) -> TestResult:
    """Nadeau-Bengio corrected resampled t (Bouckaert-Frank with repeats): var x (1/n + n_test/n_train)."""
    ratio = check_ratio(test_train_ratio)
    d = _paired(a, b)
    return _t_from(d, 1 / len(d) + ratio, "corrected t (Nadeau-Bengio)",
                   f"variance inflated by n_test/n_train = {ratio:.4g} for overlapping training sets",
                   constant_difference(a, b))


def bayesian_correlated_ttest(a: ArrayLike, b: ArrayLike, *, test_train_ratio: float, rope: float) -> BayesResult:
    """Corani & Benavoli's correlated Bayesian t-test on a - b, with correlation rho = n_test / n.

    The posterior of the mean difference is Student-t with n - 1 df, location mean(d) and
    scale sqrt((1/n + rho / (1 - rho)) s^2); rho / (1 - rho) = n_test / n_train.
    """
    if not (math.isfinite(rope) and rope >= 0):
        raise StatsError(f"rope must be a finite number >= 0, got {rope!r}")
    ratio = check_ratio(test_train_ratio)
    d = _paired(a, b)
    n = len(d)
    constant = constant_difference(a, b)
    if constant is not None:  # the posterior is a point mass at the constant difference (as baycomp)
        above, below = float(constant > rope), float(constant < -rope)
        return BayesResult(above, 1 - above - below, below, rope, constant, 0.0, n - 1, n,
                           f"every paired difference equals {constant:.6g} (up to rounding): "
                           "the posterior is a point mass there")
    var = float(np.var(d, ddof=1))
    scale = math.sqrt((1 / n + ratio) * var)
    mean = float(np.mean(d))  # posterior: Student t(n - 1, mean, scale)
    below, above = float(stats.t.cdf((-rope - mean) / scale, n - 1)), float(stats.t.sf((rope - mean) / scale, n - 1))
    return BayesResult(above, max(0.0, 1 - above - below), below, rope, float(np.mean(d)), scale, n - 1, n,
                       f"correlation rho = {ratio / (1 + ratio):.4g}, flat prior")


def min_wilcoxon_p(n: int) -> float:
    """Smallest two-sided exact Wilcoxon signed-rank p-value attainable with n non-zero differences: 2 / 2^n."""
    return min(1.0, 2.0 / 2**n) if n > 0 else 1.0


def constant_may_be_chance(n: int, alpha: float) -> bool:
    """Whether n paired scores that all differ by the same amount could be chance at level ``alpha``: with a
    quantized metric (accuracy on 12 samples moves in steps of 1/12) 2 or 3 folds often agree exactly. All n
    on one side has probability 2 / 2^n under no difference, so fewer than log2(2 / alpha) scores (6 at 0.05)
    settle nothing."""
    return min_wilcoxon_p(n) > alpha


def wilcoxon(a: ArrayLike, b: ArrayLike) -> TestResult:
    """Wilcoxon signed-rank test; scipy chooses the method ("auto": exact only without ties or zeros).

    Zero differences (up to rounding) are dropped ("wilcox"), so the minimum attainable p counts only
    the non-zero ones.
    """
    d = _paired(a, b)
    d = np.where(np.abs(d) <= tolerance(a, b), 0.0, d)
    nonzero = int(np.count_nonzero(d))
    if nonzero == 0:
        raise StatsError("wilcoxon: every paired difference is 0 (up to rounding); there is nothing to rank")
    result = stats.wilcoxon(d, zero_method="wilcox", method="auto")
    note = f"minimum attainable two-sided p with n = {nonzero} is {min_wilcoxon_p(nonzero):.4g} (n: non-zero differences)"
    if nonzero < len(d):
        note += f" ({len(d) - nonzero} zero difference(s) dropped)"
    return TestResult("wilcoxon signed-rank", float(result.statistic), float(result.pvalue), nonzero, None, note)


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


def friedman(scores_by_arm: Mapping[str, ArrayLike], alpha: float = 0.05, *,
             higher_is_better: bool = True) -> FriedmanResult:
    """Friedman test over >= 3 arms (rows = blocks) with mean ranks (1 = best) and the Nemenyi critical difference."""
    names = list(scores_by_arm)
    if len(names) < 3:
        raise StatsError(f"friedman needs at least 3 arms, got {len(names)}")
    matrix = np.column_stack([np.asarray(scores_by_arm[n], dtype=float) for n in names])
    if matrix.shape[0] < 2:
        raise StatsError("friedman needs at least 2 paired scores per arm")
    missing = [n for n, column in zip(names, matrix.T, strict=True) if not np.all(np.isfinite(column))]
    if missing:
        raise StatsError(f"friedman: scores of {', '.join(missing)} contain NaN or infinity (a diverged or failed "
                         "fold?); ranks cannot be formed; rerun or drop those arms")
    if np.all(matrix == matrix[:, :1]):  # scipy divides 0 by 0 here (a NaN statistic and a RuntimeWarning)
        raise StatsError(f"friedman: every arm scores the same on each of the {matrix.shape[0]} blocks (ties "
                         "throughout): the statistic is undefined and no block separates the arms")
    result = stats.friedmanchisquare(*matrix.T)
    ranks = stats.rankdata(-matrix if higher_is_better else matrix, axis=1).mean(axis=0)
    return FriedmanResult(float(result.statistic), float(result.pvalue), matrix.shape[0], len(names),
                          dict(zip(names, map(float, ranks), strict=True)), nemenyi_cd(len(names), matrix.shape[0], alpha), alpha)


def _adjust(pvalues: ArrayLike, method: str) -> np.ndarray:
    """Adjusted p-values over the finite ones only; a NaN (test not computed) stays NaN and is not counted."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if not finite.any():
        return out
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise StatsError("p-values must lie in [0, 1]")
    out[finite] = multipletests(p[finite], method=method)[1]
    return out


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error)."""
    return _adjust(pvalues, "holm")


def bonferroni(pvalues: ArrayLike) -> np.ndarray:
    """Bonferroni adjusted p-values."""
    return _adjust(pvalues, "bonferroni")
