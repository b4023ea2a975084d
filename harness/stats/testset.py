"""Per-sample tests: one prediction per arm per sample, paired over samples, clustered by group.

Used for the held-out test set (each arm's fold models averaged) and, labelled as conditional, for
pooled out-of-fold predictions. Samples of one group (a patient, a video) are not independent, so
with groups the bootstrap resamples groups and McNemar becomes Durkalski et al.'s (2003) clustered
version; the randomization test swaps the two arms' predictions per group.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from harness.stats._effects import Interval
from harness.stats._results import StatsError, TestResult

Statistic = Callable[[np.ndarray], float]  # sample indices -> metric(a) - metric(b) on those samples


def _cluster_index(groups: np.ndarray | None, n: int) -> list[np.ndarray]:
    if groups is None:
        return [np.array([i]) for i in range(n)]
    _, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.cumsum(np.bincount(inverse))[:-1])


def clustered_mcnemar(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, groups: np.ndarray) -> TestResult:
    """Durkalski et al. (2003) McNemar for clustered pairs: (sum_k (b_k - c_k))^2 / sum_k (b_k - c_k)^2 ~ chi^2(1).

    b_k (c_k): samples of cluster k only a (only b) gets right. With one sample per cluster it is the
    uncorrected McNemar chi^2.
    """
    y, pa, pb, g = (np.asarray(v) for v in (y_true, pred_a, pred_b, groups))
    if not (y.shape == pa.shape == pb.shape == g.shape) or y.ndim != 1 or len(y) == 0:
        raise StatsError("clustered McNemar needs four non-empty 1-D arrays of equal length")
    ca, cb = (pa == y).astype(float), (pb == y).astype(float)
    _, inverse = np.unique(g, return_inverse=True)
    per_cluster = np.bincount(inverse, weights=ca - cb)
    denominator = float(np.sum(per_cluster**2))
    b, c = int(np.sum((ca == 1) & (cb == 0))), int(np.sum((ca == 0) & (cb == 1)))
    note = f"clustered by group (Durkalski 2003): {len(per_cluster)} groups, b={b}, c={c}"
    if denominator == 0:
        return TestResult("clustered mcnemar", 0.0, 1.0, len(y), 1, note + "; no discordant group: no evidence of a difference")
    statistic = float(np.sum(per_cluster) ** 2 / denominator)
    return TestResult("clustered mcnemar", statistic, float(stats.chi2.sf(statistic, 1)), len(y), 1, note)


def bootstrap_replicates(statistic: Statistic, n: int, groups: np.ndarray | None, *, n_resamples: int = 2000,
                         seed: int = 0) -> np.ndarray:
    """``statistic`` on ``n_resamples`` resamples of the samples (or, with groups, of whole groups)."""
    clusters = _cluster_index(groups, n)
    if len(clusters) < 2:
        raise StatsError(f"a bootstrap needs at least 2 {'groups' if groups is not None else 'samples'}")
    flat = np.concatenate(clusters)
    sizes = np.array([len(c) for c in clusters])
    starts = np.cumsum(sizes) - sizes
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    for i, picked in enumerate(rng.integers(0, len(clusters), (n_resamples, len(clusters)))):
        lengths = sizes[picked]  # the picked clusters' members, laid end to end
        shift = np.repeat(starts[picked] - (np.cumsum(lengths) - lengths), lengths)
        out[i] = statistic(flat[shift + np.arange(int(lengths.sum()))])
    return out


def cluster_bootstrap(statistic: Statistic, n: int, groups: np.ndarray | None, *, confidence: float = 0.95,
                      n_resamples: int = 2000, seed: int = 0) -> tuple[Interval, np.ndarray]:
    """Percentile interval of the paired difference; resamples groups when given. Returns the replicates too."""
    replicates = bootstrap_replicates(statistic, n, groups, n_resamples=n_resamples, seed=seed)
    low, high = np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2])
    method = "paired percentile bootstrap" + (" over groups (cluster bootstrap)" if groups is not None else " over samples")
    return Interval(float(statistic(np.arange(n))), float(low), float(high), confidence, method), replicates


def randomization_test(score_a: Callable[[np.ndarray, np.ndarray], float], n: int, groups: np.ndarray | None, *,
                       n_resamples: int = 1999, seed: int = 0) -> TestResult:
    """Paired randomization test: swap the arms' predictions per sample (per group) at random.

    ``score_a(idx, swap)`` returns metric(a) - metric(b) on samples ``idx`` after swapping the arms on
    the samples where ``swap`` is True. Valid for any metric (macro F1, ROC-AUC) and for clusters.
    """
    clusters = _cluster_index(groups, n)
    everything = np.arange(n)
    observed = score_a(everything, np.zeros(n, dtype=bool))
    rng = np.random.default_rng(seed)
    label = np.empty(n, dtype=int)
    for j, members in enumerate(clusters):
        label[members] = j
    hits = 0
    for _ in range(n_resamples):
        flip = rng.random(len(clusters)) < 0.5
        hits += abs(score_a(everything, flip[label])) >= abs(observed) - 1e-12
    unit = "group" if groups is not None else "sample"
    return TestResult("paired randomization", float(observed), (hits + 1) / (n_resamples + 1), n, None,
                      f"arms swapped per {unit} at random, {n_resamples} resamples")
