"""Effect sizes and intervals: Clopper-Pearson against R, the paired bootstrap, the corrected interval by hand."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats import bootstrap_ci, clopper_pearson


def test_clopper_pearson_r_binom_test_example() -> None:
    """R's ?binom.test example (Mendel's peas, 682 of 925): 95 % CI 0.7076683 - 0.7654066."""
    ci = clopper_pearson(682, 925)
    assert (ci.low, ci.high) == (pytest.approx(0.7076683, abs=1e-7), pytest.approx(0.7654066, abs=1e-7))


def test_bootstrap_ci_is_paired_seeded_and_brackets_the_difference() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    a = np.where(rng.random(300) < 0.85, y, (y + 1) % 3)
    b = np.where(rng.random(300) < 0.70, y, (y + 1) % 3)
    ci = bootstrap_ci(y, a, b)
    assert ci == bootstrap_ci(y, a, b)  # fixed seed: identical
    assert ci.low < ci.estimate < ci.high
    assert ci.estimate == pytest.approx(np.mean(a == y) - np.mean(b == y))
    assert ci.low > 0  # 15 points apart on 300 samples
