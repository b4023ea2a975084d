"""Small frozen result objects returned by every test."""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError

SIDE_THRESHOLD = 0.975  # P(better) or P(worse) for that verdict: two one-sided decisions, 5 % false calls in all
EQUIVALENT_THRESHOLD = 0.95  # P(within the rope) for "equivalent"
VERDICT_RULE = (f"better/worse when P(better) or P(worse) >= {SIDE_THRESHOLD:g} (two one-sided decisions at "
                f"{1 - SIDE_THRESHOLD:.1%} each: a false better/worse in at most about 5 % of designs where the arms do not "
                f"differ), equivalent when P(within the rope) >= {EQUIVALENT_THRESHOLD:g}, else inconclusive")


def verdict_of(p_better: float, p_rope: float, p_worse: float) -> str:
    """better / worse / equivalent / inconclusive from posterior probabilities (see VERDICT_RULE)."""
    if p_better >= SIDE_THRESHOLD:
        return "better"
    if p_worse >= SIDE_THRESHOLD:
        return "worse"
    if p_rope >= EQUIVALENT_THRESHOLD:
        return "equivalent"
    return "inconclusive"


class StatsError(HarnessError, ValueError):
    """Inputs a test cannot be computed on; the message says what it means."""


@dataclass(frozen=True)
class TestResult:
    test: str
    statistic: float
    pvalue: float
    n: int
    df: float | None = None
    assumption: str = ""
    __test__ = False  # not a pytest test class


@dataclass(frozen=True)
class BayesResult:
    """Posterior probabilities that a - b is above, inside or below the region of practical equivalence."""

    p_a_better: float
    p_rope: float
    p_b_better: float
    rope: float
    mean: float
    scale: float
    df: float
    n: int
    assumption: str = ""

    def verdict(self) -> str:
        return verdict_of(self.p_a_better, self.p_rope, self.p_b_better)


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float
    pvalue: float
    n: int
    k: int
    mean_ranks: dict[str, float]
    critical_difference: float
    alpha: float
