"""Small frozen result objects returned by every test."""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError


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

    def verdict(self, threshold: float = 0.95) -> str:
        if self.p_a_better >= threshold:
            return "better"
        if self.p_b_better >= threshold:
            return "worse"
        if self.p_rope >= threshold:
            return "equivalent"
        return "inconclusive"


@dataclass(frozen=True)
class FriedmanResult:
    statistic: float
    pvalue: float
    n: int
    k: int
    mean_ranks: dict[str, float]
    critical_difference: float
    alpha: float
