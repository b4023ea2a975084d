"""cv.stop_when_settled's rule (harness.stats.sequential): boundaries and simulated error rates (numpy only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.stats import sequential as seq

ALPHA = 0.05


def _mc(rate: float, n: int) -> float:
    """Three Monte-Carlo standard errors of a rate estimated from n designs."""
    return 3 * math.sqrt(rate * (1 - rate) / n)


def test_boundaries_match_the_published_lan_demets_obrien_fleming_values() -> None:
    # gsDesign sfLDOF, 5 equally spaced looks, one-sided 0.025 (= two-sided 0.05): 4.877 3.357 2.680 2.290 2.031
    bounds = seq.boundaries(np.arange(1, 6) / 5, ALPHA)
    assert bounds == pytest.approx([4.8769, 3.3569, 2.6803, 2.2898, 2.0310], abs=2e-3)
    assert seq.boundaries([1.0], ALPHA)[0] == pytest.approx(1.95996, abs=1e-4)
    with pytest.raises(ValueError, match="increase"):
        seq.boundaries([0.5, 0.4, 1.0], ALPHA)


@pytest.mark.parametrize(("folds", "repeats"), [(5, 10), (3, 6)])
def test_no_difference_keeps_the_false_better_worse_rate_at_alpha(folds: int, repeats: int) -> None:
    n = 40_000
    exact = seq.simulate(np.zeros(n), folds=folds, max_repeats=repeats, alpha=ALPHA, rope=0.0, seed=1)
    assert abs(exact.rate("better", "worse") - ALPHA) < _mc(ALPHA, n)  # the corrected t's own model: at alpha
    per_repeat = seq.simulate(np.zeros(n), folds=folds, max_repeats=repeats, alpha=ALPHA, rope=0.1, seed=2,
                              shared="repeat")
    assert per_repeat.rate("better", "worse") < ALPHA + _mc(ALPHA, n)  # a new shared effect per repeat: below


def test_a_difference_of_the_rope_is_rarely_called_equivalent() -> None:
    n = 40_000
    sim = seq.simulate(np.full(n, 1.5), folds=5, max_repeats=10, alpha=ALPHA, rope=1.5, seed=3)
    assert sim.rate("equivalent") < ALPHA / 2 + _mc(ALPHA / 2, n)


def test_a_difference_inside_the_rope_is_not_called_better() -> None:
    """Better means beyond the ROPE, as compare's verdict (P(d > rope)): a true difference of half the ROPE was
    called better in 16 % of designs when the rule tested against 0 (compare at the full budget: 0.1 %); a
    difference of exactly the ROPE is called better at most alpha/2 of the time."""
    n = 20_000
    half = seq.simulate(np.full(n, 0.5), folds=5, max_repeats=10, alpha=ALPHA, rope=1.0, seed=8)
    assert half.rate("better", "worse") < 0.005
    edge = seq.simulate(np.full(n, 1.0), folds=5, max_repeats=10, alpha=ALPHA, rope=1.0, seed=9)
    assert edge.rate("better") < ALPHA / 2 + _mc(ALPHA / 2, n)
    kw = {"folds": 5, "max_repeats": 4, "test_train_ratio": 0.25, "alpha": ALPHA, "rope": 0.05}
    small = seq.decide([0.03, 0.031, 0.029, 0.03, 0.032, 0.028, 0.03, 0.031, 0.029, 0.03], look=2, **kw)
    assert small.statistic > small.boundary and small.decision != "better"  # significant, but inside the ROPE


def test_a_large_difference_stops_within_half_the_budget() -> None:
    sim = seq.simulate(np.full(5000, 3.0), folds=5, max_repeats=10, alpha=ALPHA, rope=0.1, seed=4)
    assert sim.repeats.mean() <= 10 / 2
    assert sim.rate("better") > 0.99


def test_the_sequential_verdict_agrees_with_the_full_budget_verdict() -> None:
    effects = np.random.default_rng(5).uniform(-4, 4, 20_000)  # differences in units of the fold sd
    sim = seq.simulate(effects, folds=5, max_repeats=10, alpha=ALPHA, rope=0.25, seed=6)
    assert sim.agreement >= 0.95
    opposite = np.isin(sim.decisions * 10 + sim.full, [12, 21])  # better vs worse
    assert not opposite.any()
    assert sim.repeats.mean() < 10 * 0.6  # and it saves repeats


def test_decide_one_arm() -> None:
    kw = {"folds": 2, "max_repeats": 4, "test_train_ratio": 1.0, "alpha": ALPHA, "rope": 0.01}
    assert seq.decide([0.0] * 2, look=1, **kw).decision == "equivalent"  # identical scores on every fold
    strong = seq.decide([0.30, 0.32, 0.31, 0.29], look=2, **kw)
    assert strong.decision == "better" and strong.statistic > strong.boundary and "boundary" in strong.reason
    assert seq.decide([0.30, 0.32], look=1, **kw).decision == "continue"  # 1 df: the first look rarely stops
    assert seq.decide([-0.30, -0.32, -0.31, -0.29], look=2, **kw).decision == "worse"
    noisy = [0.05, -0.04, 0.02, -0.01]
    assert seq.decide(noisy, look=2, **kw).decision == "continue"
    assert seq.decide(noisy * 2, look=4, **kw).decision == "inconclusive"  # the last look
    with pytest.raises(ValueError, match="cannot hold"):
        seq.decide([0.1, 0.2, 0.3], look=1, **kw)


def test_a_difference_equal_on_a_few_folds_does_not_stop_the_run() -> None:
    """2 folds of 12 images: both folds +1/12 happens by chance; it used to stop at once as 'better'."""
    kw = {"folds": 2, "max_repeats": 4, "test_train_ratio": 1.0, "alpha": ALPHA, "rope": 0.01}
    first = seq.decide([1 / 12, 1 / 12], look=1, **kw)
    assert first.decision == "continue" and "agree by chance" in first.reason
    assert seq.decide([1 / 12] * 4, look=2, **{**kw, "max_repeats": 2}).decision == "inconclusive"  # the last look
    assert seq.decide([1 / 12] * 8, look=4, **kw).decision == "better"  # 8 folds on one side: 2 / 2^8 < alpha
    assert seq.decide([0.0] * 2, look=1, **kw).decision == "equivalent"  # identical arms stay equivalent


def test_describe_the_stopping_record() -> None:
    record = {"status": "settled", "repeats_run": 2, "max_repeats": 4, "decisions": {"slow": "worse"},
              "alpha": 0.05, "rope": 0.01}
    assert seq.describe(record).startswith("stopped after 2 of 4 repeats: every arm settled (slow worse")
    assert seq.describe({**record, "status": "exhausted", "repeats_run": 4}).startswith("ran all 4 repeats")
