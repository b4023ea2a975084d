"""Power: the minimal detectable effect and the design plan, against statsmodels."""

from __future__ import annotations

import math

import pytest


def test_min_detectable_matches_statsmodels_power_without_correlation() -> None:
    """With n_test/n_train -> 0 the corrected test is the one-sample t: statsmodels' TTestPower solves the same."""
    from statsmodels.stats.power import TTestPower

    from harness.stats.power import min_detectable

    for n in (5, 10, 30):
        effect = TTestPower().solve_power(nobs=n, alpha=0.05, power=0.8, alternative="two-sided")
        assert min_detectable(0.02, n, 1e-12) == pytest.approx(effect * 0.02, rel=1e-4)
    floor = min_detectable(0.02, math.inf, 0.25)
    assert floor == pytest.approx((1.959964 + 0.841621) * 0.5 * 0.02, rel=1e-5)
    assert min_detectable(0.02, 10, 0.25) > min_detectable(0.02, 100, 0.25) > floor


def test_plan_finds_repeats_or_says_none_can() -> None:
    from harness.stats.power import min_detectable, plan_designs

    options = {o.folds: o for o in plan_designs(0.02, 5, 0.03)}
    five = options[5]
    assert five.repeats is not None and five.detectable <= 0.03
    if five.repeats > 1:
        assert min_detectable(0.02, 5 * (five.repeats - 1), 0.25) > 0.03  # the fewest repeats
    none = {o.folds: o for o in plan_designs(0.02, 5, 0.005)}[5]
    assert none.repeats is None and none.floor > 0.005
