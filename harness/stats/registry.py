"""The one list of metrics: name, aliases, direction, range and unit of scoring.

Every consumer (``compare``, ``tune``, the report, distributed workers, study validation) asks
:func:`resolve_metric`, so ``loss`` is lower-is-better everywhere and ``f1`` means ``f1_macro``
everywhere. A ``test_`` prefix names the same metric scored on the held-out test set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from harness.stats._results import StatsError

TEST_PREFIX = "test_"


@dataclass(frozen=True)
class MetricInfo:
    """One metric as stored in ``results.csv`` (``column``) and how to read it."""

    name: str  # canonical CV name, e.g. "f1_macro"
    higher_is_better: bool
    low: float
    high: float
    kind: Literal["per-sample", "per-fold"]  # per-sample: a mean of per-sample correctness
    aliases: tuple[str, ...] = ()
    summary: str = ""
    on_test: bool = False  # scored on the held-out test set (column test_<name>)

    @property
    def column(self) -> str:
        return TEST_PREFIX + self.name if self.on_test else self.name

    @property
    def sign(self) -> float:
        """+1 when higher is better, -1 when lower is: ``sign * (a - b) > 0`` means a is better."""
        return 1.0 if self.higher_is_better else -1.0

    @property
    def direction(self) -> Literal["maximize", "minimize"]:
        return "maximize" if self.higher_is_better else "minimize"

    @property
    def span(self) -> float:
        """Width of the range: the largest possible |difference| between two arms."""
        return self.high - self.low

    def clip(self, value: float) -> float:
        return float(min(max(value, self.low), self.high))

    def clip_difference(self, value: float) -> float:
        return float(min(max(value, -self.span), self.span))


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("accuracy", True, kind="per-sample", aliases=("acc",), summary="share of samples right", low=0.0, high=1.0),
    MetricInfo("balanced_accuracy", True, kind="per-fold", aliases=("balanced_acc",),
               summary="mean recall over the classes present in y_true", low=0.0, high=1.0),
    MetricInfo("precision_macro", True, kind="per-fold", aliases=("precision",), low=0.0, high=1.0),
    MetricInfo("recall_macro", True, kind="per-fold", aliases=("recall",), low=0.0, high=1.0),
    MetricInfo("f1_macro", True, kind="per-fold", aliases=("f1",), low=0.0, high=1.0),
    MetricInfo("precision_weighted", True, kind="per-fold", low=0.0, high=1.0),
    MetricInfo("recall_weighted", True, kind="per-fold", low=0.0, high=1.0),
    MetricInfo("f1_weighted", True, kind="per-fold", low=0.0, high=1.0),
    MetricInfo("roc_auc_ovr", True, kind="per-fold", aliases=("roc_auc", "auc"),
               summary="one-vs-rest ROC-AUC averaged over the classes present", low=0.0, high=1.0),
    MetricInfo("loss", False, low=0.0, high=math.inf, kind="per-sample", aliases=("cross_entropy", "nll"),
               summary="mean cross-entropy (lower is better)"),
)
_BY_NAME = {m.name: m for m in METRICS}
_ALIASES = {alias: m.name for m in METRICS for alias in m.aliases}


def metric_names(*, with_aliases: bool = True, with_test: bool = True) -> list[str]:
    """Every name ``resolve_metric`` accepts (for messages and close-match suggestions)."""
    base = [m.name for m in METRICS] + (list(_ALIASES) if with_aliases else [])
    return base + ([TEST_PREFIX + n for n in base] if with_test else [])


def resolve_metric(name: str, *, allow_test: bool = True) -> MetricInfo:
    """The metric called ``name`` (alias or ``test_`` prefix allowed); StatsError naming close matches."""
    from harness.errors import did_you_mean

    on_test = name.startswith(TEST_PREFIX) and name[len(TEST_PREFIX):] in {**_BY_NAME, **_ALIASES}
    base = name[len(TEST_PREFIX):] if on_test else name
    canonical = _ALIASES.get(base, base)
    if canonical not in _BY_NAME or (on_test and not allow_test):
        choices = metric_names(with_test=allow_test)
        where = "" if allow_test or not on_test else " (test-set metrics cannot be used here: they would select on the test set)"
        raise StatsError(f"unknown metric {name!r}{where}{did_you_mean(name, choices)}; "
                         f"known: {', '.join(metric_names(with_aliases=False, with_test=False))} "
                         f"(aliases: {', '.join(f'{a} = {c}' for a, c in _ALIASES.items())}"
                         f"{'; prefix test_ for the held-out test set' if allow_test else ''})")
    info = _BY_NAME[canonical]
    return replace(info, on_test=True) if on_test else info
