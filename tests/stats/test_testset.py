"""Null simulations: two arms whose scores come from one distribution must rarely be called different.

Pure numpy learners (nearest centroid on two disjoint, equally informative halves of the features), so the
arms are different models with the same population accuracy: the situation of an ablation where nothing
helps. Fast (no torch): each test runs 400 simulated designs.
"""

from __future__ import annotations

import math

import numpy as np

from harness.stats import bayesian_correlated_ttest, corrected_ttest, mcnemar, paired_ttest

ALPHA, DESIGNS = 0.05, 400
NOISE = 3 * math.sqrt(ALPHA * (1 - ALPHA) / DESIGNS)  # three binomial standard errors: 0.033


def _centroid_predict(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    c0, c1 = x_train[y_train == 0].mean(0), x_train[y_train == 1].mean(0)
    return (((x - c1) ** 2).sum(1) < ((x - c0) ** 2).sum(1)).astype(int)


def _design(rng: np.random.Generator, n: int = 120, n_test: int = 100, k: int = 5, r: int = 2, d: int = 10
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """k x r CV scores, per-fold test scores, test-set vote shares and test labels for arms a and b."""
    mu = np.full(d, 0.25)

    def draw(m: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, m)
        return rng.normal(0, 1, (m, d)) + np.outer(2 * y - 1, mu), y

    (x, y), (x_test, y_test) = draw(n), draw(n_test)
    features = {"a": slice(0, d // 2), "b": slice(d // 2, d)}
    cv: dict[str, list[float]] = {"a": [], "b": []}
    test: dict[str, list[float]] = {"a": [], "b": []}
    votes = {"a": np.zeros(n_test), "b": np.zeros(n_test)}
    for _ in range(r):
        fold_of = np.empty(n, dtype=int)
        fold_of[rng.permutation(n)] = np.arange(n) % k
        for fold in range(k):
            val = fold_of == fold
            for arm, f in features.items():
                xa = x[:, f]
                cv[arm].append(float(np.mean(_centroid_predict(xa[~val], y[~val], xa[val]) == y[val])))
                predicted = _centroid_predict(xa[~val], y[~val], x_test[:, f])
                test[arm].append(float(np.mean(predicted == y_test)))
                votes[arm] += predicted / (k * r)
    return ({a: np.array(v) for a, v in cv.items()}, {a: np.array(v) for a, v in test.items()}, votes, y_test)


def test_corrected_t_and_bayes_under_the_null() -> None:
    rng = np.random.default_rng(0)
    corrected = plain = called = 0
    for _ in range(DESIGNS):
        cv, _, _, _ = _design(rng)
        corrected += corrected_ttest(cv["a"], cv["b"], test_train_ratio=1 / 4).pvalue < ALPHA
        plain += paired_ttest(cv["a"], cv["b"]).pvalue < ALPHA
        verdict = bayesian_correlated_ttest(cv["a"], cv["b"], test_train_ratio=1 / 4, rope=0.01).verdict()
        called += verdict in ("better", "worse")
    assert corrected / DESIGNS <= ALPHA + NOISE
    assert called / DESIGNS <= ALPHA + NOISE  # "better"/"worse" at P >= 0.95: rarely
    assert plain / DESIGNS > ALPHA + NOISE  # the simulation has teeth: the uncorrected test fails it


def test_held_out_test_set_needs_the_per_sample_test() -> None:
    """k fold models on one shared test set: the CV test rejects far too often (what compare did on test_*);
    McNemar on the averaged predictions, paired over test samples, holds its level."""
    rng = np.random.default_rng(1)
    cv_test_on_test_scores = per_sample = 0
    for _ in range(DESIGNS):
        _, test, votes, y_test = _design(rng)
        cv_test_on_test_scores += corrected_ttest(test["a"], test["b"], test_train_ratio=1 / 4).pvalue < ALPHA
        predicted_a, predicted_b = (votes["a"] > 0.5).astype(int), (votes["b"] > 0.5).astype(int)
        per_sample += mcnemar(y_test, predicted_a, predicted_b, exact=True).pvalue < ALPHA
    assert per_sample / DESIGNS <= ALPHA + NOISE
    assert cv_test_on_test_scores / DESIGNS > 0.3


def test_grouped_predictions_need_the_clustered_tests() -> None:
    """40 patients x 8 images, each arm good or bad on a patient by chance (same distribution for both arms):
    McNemar over images treats them as independent and rejects too often; the clustered McNemar (Durkalski)
    and the cluster bootstrap hold their level."""
    from harness.stats import clustered_mcnemar
    from harness.stats.testset import cluster_bootstrap

    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(40), 8)
    y = np.ones(len(groups), dtype=int)
    naive = clustered = bootstrap_misses = 0
    for design in range(DESIGNS):
        difficulty = rng.normal(0, 1, 40)[groups]
        correct = {arm: difficulty + rng.normal(0, 1, 40)[groups] + rng.normal(0, 0.5, len(groups)) > -0.5
                   for arm in ("a", "b")}
        pred_a, pred_b = correct["a"].astype(int), correct["b"].astype(int)
        naive += mcnemar(y, pred_a, pred_b).pvalue < ALPHA
        clustered += clustered_mcnemar(y, pred_a, pred_b, groups).pvalue < ALPHA
        if design < 100:  # the bootstrap is slower: its coverage on 100 designs
            gain = correct["a"].astype(float) - correct["b"].astype(float)
            ci, _ = cluster_bootstrap(lambda idx, gain=gain: float(np.mean(gain[idx])), len(y), groups,
                                      n_resamples=300, seed=design)
            bootstrap_misses += not ci.low <= 0 <= ci.high
    assert naive / DESIGNS > ALPHA + NOISE
    assert clustered / DESIGNS <= ALPHA + NOISE
    assert bootstrap_misses / 100 <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / 100)
