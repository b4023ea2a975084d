"""Effect sizes and confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.stats._results import StatsError
from harness.stats._tests import _paired, check_ratio, constant_difference, tolerance


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    confidence: float
    method: str


@dataclass(frozen=True)
class EffectSizes:
    mean_difference_points: float  # in percentage points for [0, 1] metrics
    cohens_dz: float
    cliffs_delta: float
    p_a_greater: float  # share of paired folds where a beats b (ties count half)


def cohens_dz(a: Sequence[float], b: Sequence[float]) -> float:
    """Mean paired difference over its sd; +-inf for a constant non-zero difference, 0 for none (up to rounding)."""
    d = _paired(a, b)
    constant = constant_difference(a, b)
    if constant is not None:
        return 0.0 if constant == 0 else math.copysign(math.inf, constant)
    return float(np.mean(d) / np.std(d, ddof=1))


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) == 0 or len(y) == 0:
        raise StatsError("cliffs_delta needs two non-empty samples")
    greater, less = int(np.sum(x[:, None] > y[None, :])), int(np.sum(x[:, None] < y[None, :]))
    return (greater - less) / (len(x) * len(y))


def effect_sizes(a: Sequence[float], b: Sequence[float]) -> EffectSizes:
    d = _paired(a, b)
    d = np.where(np.abs(d) <= tolerance(a, b), 0.0, d)
    return EffectSizes(float(np.mean(d) * 100), cohens_dz(a, b), cliffs_delta(a, b),
                       float(np.mean(d > 0) + 0.5 * np.mean(d == 0)))


def clopper_pearson(correct: int, n: int, confidence: float = 0.95) -> Interval:
    """Exact (Clopper-Pearson) interval for one accuracy."""
    from scipy.stats import binomtest

    if n <= 0 or not 0 <= correct <= n:
        raise StatsError(f"clopper_pearson needs 0 <= correct <= n and n > 0, got {correct}/{n}")
    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="exact")
    return Interval(correct / n, float(ci.low), float(ci.high), confidence, "Clopper-Pearson")


def _accuracy_difference(y: np.ndarray, pa: np.ndarray, pb: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean((pa == y).astype(float) - (pb == y).astype(float), axis=axis)


def bootstrap_ci(
    y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], *,
    metric: Callable[[np.ndarray, np.ndarray], float] | None = None,
    confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0,
) -> Interval:
    """Paired BCa bootstrap CI of metric(a) - metric(b) over samples (default metric: accuracy)."""
    from scipy.stats import bootstrap

    y, pa, pb = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    if not (y.shape == pa.shape == pb.shape) or len(y) < 2:
        raise StatsError("bootstrap_ci needs three 1-D arrays of equal length >= 2")
    statistic: Callable[..., Any]
    if metric is None:
        statistic, vectorized, estimate = _accuracy_difference, True, float(_accuracy_difference(y, pa, pb))
    else:
        def metric_difference(yy: np.ndarray, aa: np.ndarray, bb: np.ndarray) -> float:
            return metric(yy, aa) - metric(yy, bb)

        statistic, vectorized, estimate = metric_difference, False, float(metric_difference(y, pa, pb))
    if np.array_equal(pa == y, pb == y) and metric is None:
        return Interval(estimate, estimate, estimate, confidence, "paired BCa bootstrap (degenerate: same correctness)")
    result = bootstrap((y, pa, pb), statistic, paired=True, vectorized=vectorized, method="BCa",
                       confidence_level=confidence, n_resamples=n_resamples, rng=np.random.default_rng(seed))
    return Interval(estimate, float(result.confidence_interval.low), float(result.confidence_interval.high),
                    confidence, "paired BCa bootstrap")


def corrected_interval(values: Sequence[float], *, test_train_ratio: float, confidence: float = 0.95,
                       bounds: tuple[float, float] = (-math.inf, math.inf)) -> Interval:
    """t(n-1) interval of a mean over CV folds with the Nadeau-Bengio variance s^2 (1/n + n_test/n_train).

    Use it for one arm's mean (bounds: the metric's range) and for a paired difference (bounds:
    +- the range's width). sd / sqrt(n) would ignore that folds share training data (1.5-3x too narrow).
    """
    from scipy import stats

    ratio = check_ratio(test_train_ratio)
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        raise StatsError(f"an interval needs at least 2 finite scores, got {len(x)}")
    mean = float(np.mean(x))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * math.sqrt((1 / len(x) + ratio) * np.var(x, ddof=1)))
    low, high = max(mean - half, bounds[0]), min(mean + half, bounds[1])
    clipped = " (clipped to the metric's range)" if (low, high) != (mean - half, mean + half) else ""
    return Interval(mean, low, high, confidence, f"corrected t (1/n + n_test/n_train = {1 / len(x) + ratio:.4g}){clipped}")
