"""What a cross-validation design can detect: the corrected t-test's power, its floor and a planner.

The corrected test's variance is s^2 (1/n + n_test/n_train) with n = k r paired scores. More
repeats shrink only the 1/n part: however many, the variance never falls below s^2 n_test/n_train,
so some differences no number of repeats can detect (Nadeau & Bengio 2003; Bouckaert & Frank 2004).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.stats._results import StatsError
from harness.stats._tests import check_ratio

POWER = 0.8
MAX_REPEATS = 100


def min_detectable(sd: float, n: float, test_train_ratio: float, alpha: float = 0.05, power: float = POWER) -> float:
    """Smallest true mean difference the two-sided corrected t detects with probability ``power``.

    ``sd``: the sd of the paired per-fold differences; exact under the equicorrelated-normal model
    behind the correction (non-central t with n - 1 df). ``n = inf`` gives the floor.
    """
    from scipy import optimize, stats

    ratio = check_ratio(test_train_ratio)
    if not (math.isfinite(sd) and sd >= 0):
        raise StatsError(f"the sd of the differences must be finite and >= 0, got {sd!r}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise StatsError("alpha and power must lie in (0, 1)")
    if n == math.inf:
        return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * math.sqrt(ratio) * sd)
    if n < 2:
        raise StatsError(f"power needs at least 2 paired scores, got {n}")
    df, scale = n - 1, math.sqrt(1 / n + ratio) * sd
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(nc: float) -> float:
        achieved = float(stats.nct.sf(critical, df, nc) + stats.nct.cdf(-critical, df, nc))
        return (1.0 if math.isnan(achieved) else achieved) - power  # NaN far in the tail: power is 1 there

    high = 4.0
    while shortfall(high) < 0:
        high *= 2
    nc = optimize.brentq(shortfall, 0.0, high)
    return float(nc * scale)


@dataclass(frozen=True)
class DesignOption:
    folds: int
    repeats: int | None  # None: no number of repeats up to MAX_REPEATS reaches the effect
    detectable: float  # min detectable difference with those repeats (or with MAX_REPEATS)
    floor: float  # with infinitely many repeats


def plan_designs(sd: float, folds: int, effect: float, *, alpha: float = 0.05, power: float = POWER,
                 fold_options: tuple[int, ...] = (2, 3, 5, 10)) -> list[DesignOption]:
    """For each k, the fewest repeats whose min detectable difference is <= ``effect``.

    ``sd`` was measured with ``folds`` folds; for another k it is rescaled by sqrt(k' / k) (the
    test-sample part of a fold's variance grows as its test part shrinks; training variability is
    assumed not to change) and n_test/n_train = 1 / (k' - 1).
    """
    if not effect > 0:
        raise StatsError(f"the effect to detect must be > 0, got {effect!r}")
    options = []
    for k in sorted({*fold_options, folds}):
        sd_k, ratio = sd * math.sqrt(k / folds), 1 / (k - 1)
        floor = min_detectable(sd_k, math.inf, ratio, alpha, power)
        best: int | None = None
        detectable = min_detectable(sd_k, k * MAX_REPEATS, ratio, alpha, power)
        if floor < effect and detectable <= effect:
            low, high = 1, MAX_REPEATS  # min detectable falls with repeats: bisect
            while low < high:
                mid = (low + high) // 2
                if k * mid >= 2 and min_detectable(sd_k, k * mid, ratio, alpha, power) <= effect:
                    high = mid
                else:
                    low = mid + 1
            best, detectable = low, min_detectable(sd_k, max(2, k * low), ratio, alpha, power)
        options.append(DesignOption(k, best, detectable, floor))
    return options


def format_plan(arm: str, baseline: str, metric: str, sd: float, folds: int, repeats: int, effect: float,
                options: list[DesignOption], alpha: float,
                times: dict[int, str] | None = None) -> list[str]:
    """Plain-language lines: which folds x repeats detect ``effect`` (80 % power), and where none can;
    with ``times`` (folds -> how long the whole design takes, in words) also its cost."""
    times = times or {}
    lines = [f"{arm} vs {baseline} on {metric}: sd of the per-fold differences {sd:.4g} "
             f"(measured with {folds} folds x {repeats} repeat(s)); effect to detect {effect:g} "
             f"({POWER:.0%} power, two-sided alpha {alpha:g}, corrected t)"]
    for o in options:
        if o.repeats is not None:
            took = f"; {times[o.folds]}" if o.folds in times else ""
            lines.append(f"  {o.folds:>2} folds: {o.repeats} repeat(s) (detects >= {o.detectable:.4g}){took}")
        else:
            lines.append(f"  {o.folds:>2} folds: no number of repeats can: the floor is {o.floor:.4g} > {effect:g} "
                         f"(n_test/n_train = 1/{o.folds - 1})")
    if all(o.repeats is None for o in options):
        lines.append("  no CV design of this data detects it: more data (a larger test part per fold), a less noisy "
                     "training recipe, or a larger effect is needed")
    return lines
