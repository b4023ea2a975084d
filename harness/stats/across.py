"""Tests across datasets (Demšar 2006; Benavoli et al. 2017): each dataset is one independent block.

Per dataset, an arm's score is its mean over the folds and repeats of that dataset's run. Over
datasets, each arm is compared with the baseline by the Wilcoxon signed-rank test and the Bayesian
signed-rank test (Dirichlet process, with a region of practical equivalence); with three or more
arms, the Friedman test ranks them all and the Nemenyi critical difference says which mean ranks
differ. A test the number of datasets cannot support is reported as such, never as a p-value.

A better/worse verdict needs P >= 0.975 from the Bayesian signed-rank test *and* a Wilcoxon p below
alpha: alone, the Bayesian test calls a difference in 5-13 % of simulated null designs at 0.975 with
5-20 datasets (every draw favours one side when all datasets agree in sign: 1 in 2^(n-1) under the
null), so the exact Wilcoxon bounds the false better/worse rate by alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.stats._results import VERDICT_RULE, StatsError, verdict_of
from harness.stats._tests import friedman, min_wilcoxon_p, wilcoxon

PRIOR = 0.5  # strength of the Dirichlet process's prior pseudo-observation at 0 (Benavoli et al. 2017; baycomp)
SAMPLES = 50_000  # Monte-Carlo draws of the Dirichlet process
FRIEDMAN_RELIABLE = 10  # Demšar 2006: the chi-square approximation wants N > 10 datasets (and k > 5 arms)
CD_DIAGRAM_DATASETS = 5  # fewer blocks give critical differences as wide as the rank scale


@dataclass(frozen=True)
class SignedRank:
    """Posterior probabilities of the Bayesian signed-rank test: that a is better, within the rope, or worse.

    As in Benavoli et al. (2017) and ``baycomp``, each probability is the share of Monte-Carlo draws of
    the Dirichlet process in which that region holds the largest mass.
    """

    p_a_better: float
    p_rope: float
    p_b_better: float
    rope: float
    n: int
    prior: float
    samples: int
    seed: int

    def verdict(self) -> str:
        """As within one dataset: see ``VERDICT_RULE``."""
        return verdict_of(self.p_a_better, self.p_rope, self.p_b_better)


def bayesian_signed_rank(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *, rope: float,
                         higher_is_better: bool = True, prior: float = PRIOR, samples: int = SAMPLES,
                         seed: int = 0) -> SignedRank:
    """Benavoli et al. (2017)'s Bayesian signed-rank test of a vs b over datasets (one score per dataset).

    The differences d = a - b (negated when lower is better) and one prior pseudo-observation at 0 of
    weight ``prior`` get Dirichlet(prior, 1, ..., 1) weights w; per draw, the mass of the Walsh averages
    (d_i + d_j) / 2 below -rope, within [-rope, rope] and above rope is sum_ij w_i w_j [.] .
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 1:
        raise StatsError(f"need one score per dataset for both arms, got shapes {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x) & np.isfinite(y)):
        raise StatsError("a dataset's mean score is NaN or infinite (every fold failed there?)")
    if not (math.isfinite(rope) and rope >= 0):
        raise StatsError(f"rope must be a finite number >= 0, got {rope!r}")
    d = (x - y) if higher_is_better else (y - x)
    z = np.concatenate([[0.0], d])
    sums = z[:, None] + z[None, :]
    above = (sums > 2 * rope) + 0.5 * (sums == 2 * rope)
    below = (-sums > 2 * rope) + 0.5 * (-sums == 2 * rope)
    alpha = np.ones(len(z))
    alpha[0] = prior
    weights = np.random.default_rng(seed).dirichlet(alpha, samples)
    mass_below = np.einsum("si,ij,sj->s", weights, below, weights)
    mass_above = np.einsum("si,ij,sj->s", weights, above, weights)
    masses = np.column_stack([mass_above, 1 - mass_above - mass_below, mass_below])
    better, within, worse = np.bincount(np.argmax(masses, axis=1), minlength=3) / samples
    return SignedRank(float(better), float(within), float(worse), rope, len(d), prior, samples, seed)


def _wilcoxon(a: np.ndarray, b: np.ndarray, alpha: float) -> dict[str, Any]:
    """Wilcoxon over datasets; without a p-value when the number of datasets cannot reach ``alpha``."""
    n = len(a)
    if n < 2:
        return {"error": f"Wilcoxon signed-rank needs at least 2 datasets, got {n}"}
    nonzero = int(np.count_nonzero(np.abs(a - b) > 1e-12))
    if min_wilcoxon_p(nonzero) > alpha:
        return {"error": f"with {nonzero} dataset(s) that differ, the smallest two-sided Wilcoxon p is "
                         f"{min_wilcoxon_p(nonzero):.3g}: it cannot reach p < {alpha:g} (at least "
                         f"{_wilcoxon_needs(alpha)} datasets needed); no p-value is reported"}
    try:
        return asdict(wilcoxon(a, b))
    except StatsError as exc:
        return {"error": str(exc)}


def _wilcoxon_needs(alpha: float) -> int:
    return next(n for n in range(1, 64) if min_wilcoxon_p(n) <= alpha)


def _friedman(scores: pd.DataFrame, alpha: float, higher_is_better: bool) -> dict[str, Any]:
    """Friedman over every arm with mean ranks (1 = best) and the Nemenyi critical difference."""
    k, n = scores.shape[1], scores.shape[0]
    if k < 3:
        return {"error": f"Friedman/Nemenyi compare 3 or more arms; this study has {k} (the signed-rank tests "
                         "above are the comparison)"}
    if n < 3:
        return {"error": f"Friedman needs at least 3 datasets to rank {k} arms, got {n}"}
    try:
        result = friedman({arm: scores[arm].to_numpy() for arm in scores.columns}, alpha,
                          higher_is_better=higher_is_better)
    except StatsError as exc:
        return {"error": str(exc)}
    out = asdict(result)
    if n <= FRIEDMAN_RELIABLE:
        out["note"] = (f"the chi-square approximation of Friedman's statistic is rough with {n} datasets "
                       f"(Demšar 2006 asks for more than {FRIEDMAN_RELIABLE})")
    return out


def compare_across(scores: pd.DataFrame, baseline: str, *, metric: str, higher_is_better: bool, alpha: float = 0.05,
                   rope: float = 0.01, seed: int = 0, samples: int = SAMPLES) -> dict[str, Any]:
    """Every arm vs ``baseline`` over datasets. ``scores``: one row per dataset, one column per arm
    (each the arm's mean over that dataset's folds and repeats). Plain data for across.json and the report."""
    if baseline not in scores.columns:
        raise StatsError(f"baseline {baseline!r} has no scores; arms: {', '.join(scores.columns)}")
    complete = scores.dropna()
    dropped = [str(d) for d in scores.index if d not in complete.index]
    sign = 1.0 if higher_is_better else -1.0
    arms = []
    for arm in scores.columns:
        if arm == baseline:
            continue
        a, b = complete[arm].to_numpy(), complete[baseline].to_numpy()
        better = [str(d) for d, v in zip(complete.index, sign * (a - b), strict=True) if v > 0]
        item: dict[str, Any] = {"arm": arm, "baseline": baseline, "datasets": len(a), "better_on": better,
                                "mean_difference": float(np.mean(a - b)) if len(a) else math.nan,
                                "wilcoxon": _wilcoxon(a, b, alpha)}
        try:
            item["bayes"] = asdict(bayesian_signed_rank(a, b, rope=rope, higher_is_better=higher_is_better,
                                                        seed=seed, samples=samples))
        except StatsError as exc:
            item["bayes"] = {"error": str(exc)}
        item["verdict"], item["verdict_note"] = across_verdict(item, alpha)
        item["sentence"] = sentence(item, metric)
        arms.append(item)
    out: dict[str, Any] = {"metric": metric, "higher_is_better": higher_is_better, "baseline": baseline, "alpha": alpha,
           "rope": rope, "seed": seed, "datasets": [str(d) for d in complete.index], "dropped": dropped,
           "scores": {str(d): {a: float(v) for a, v in row.items()} for d, row in scores.iterrows()},
           "arms": arms, "friedman": _friedman(complete, alpha, higher_is_better),
           "verdict_rule": f"{VERDICT_RULE}; across datasets better/worse also needs the Wilcoxon p < {alpha:g}",
           "hierarchical": "not computed (Corani et al. 2017's model needs pystan, which the harness does not "
                           "install or test)"}
    fr: dict[str, Any] = out["friedman"]
    if "error" not in fr:
        base_rank = fr["mean_ranks"][baseline]
        fr["nemenyi"] = {arm: abs(rank - base_rank) > fr["critical_difference"]
                         for arm, rank in fr["mean_ranks"].items() if arm != baseline}
    out["cd_diagram"] = cd_diagram_reason(scores.shape[1], len(complete))
    return out


def dataset_scores(results: dict[str, pd.DataFrame], column: str) -> pd.DataFrame:
    """Dataset x arm table of each arm's mean ``column`` over that dataset's folds and repeats (``results``: dataset
    id -> its results.csv).

    A fold without a finite score makes the arm's mean on that dataset NaN (it is then left out of the
    across-dataset tests and named), rather than averaging the failure away."""
    from harness.errors import HarnessError, did_you_mean

    rows: dict[str, pd.Series] = {}
    for dataset_id, frame in results.items():
        if column not in frame.columns:
            raise HarnessError(f"dataset {dataset_id!r}: no metric {column!r} in its results.csv"
                               f"{did_you_mean(column, frame.columns)}")
        rows[dataset_id] = frame.groupby("arm", sort=False)[column].agg(
            lambda v: float(v.mean()) if v.notna().all() else float("nan"))
    return pd.DataFrame(rows).T


def across_datasets(results: dict[str, pd.DataFrame], study: dict[str, Any], *, baseline: str | None = None,
                    metric: str | None = None, alpha: float | None = None, rope: float | None = None) -> dict[str, Any]:
    """Every arm vs the baseline over the datasets (``results``: dataset id -> results.csv; ``study``: the resolved
    study, whose ``compare:`` fills the settings left None and whose ``seed`` seeds the Bayesian test)."""
    from harness.errors import HarnessError, did_you_mean
    from harness.stats.registry import resolve_metric

    settings = dict(study.get("compare") or {})
    try:
        info = resolve_metric(metric or settings.get("metric") or "accuracy")
    except StatsError as exc:
        raise HarnessError(f"--metric: {exc}") from None
    scores = dataset_scores(results, info.column)
    arms = [str(a) for a in scores.columns]
    baseline = baseline or settings.get("baseline") or arms[0]
    if baseline not in arms:
        raise HarnessError(f"baseline {baseline!r} has no results{did_you_mean(baseline, arms)}; arms: {', '.join(arms)}")
    seed = int(study.get("seed", 0))
    try:
        return compare_across(scores, baseline, metric=info.column, higher_is_better=info.higher_is_better,
                              alpha=float(alpha if alpha is not None else settings.get("alpha", 0.05)),
                              rope=float(rope if rope is not None else settings.get("rope", 0.01)), seed=seed)
    except StatsError as exc:
        raise HarnessError(str(exc)) from None


def cd_diagram_reason(arms: int, datasets: int) -> str:
    """'' when a critical-difference diagram is drawn, else why not."""
    if arms < 3:
        return f"no critical-difference diagram: it ranks 3 or more arms (this study has {arms})"
    if datasets < CD_DIAGRAM_DATASETS:
        return (f"no critical-difference diagram: {datasets} dataset(s); with fewer than {CD_DIAGRAM_DATASETS} the "
                "critical difference spans most of the rank scale")
    return ""


def across_verdict(item: dict[str, Any], alpha: float) -> tuple[str, str]:
    """The Bayesian signed-rank verdict, with better/worse kept only when the Wilcoxon test rejects at ``alpha``."""
    bayes, wil = item.get("bayes", {}), item.get("wilcoxon", {})
    if "error" in bayes:
        return "inconclusive", ""
    verdict = SignedRank(**bayes).verdict()
    if verdict not in ("better", "worse") or wil.get("pvalue", 1.0) < alpha:
        return verdict, ""
    why = (f"Wilcoxon p = {wil['pvalue']:.3g} is not below {alpha:g}" if "pvalue" in wil else
           f"no Wilcoxon p-value: {wil.get('error', 'not computed')}")
    return "inconclusive", f"P({verdict}) reached the threshold but {why}, so the datasets do not show it"


def sentence(item: dict[str, Any], metric: str) -> str:
    """'se better on 2 of 3 datasets; across datasets inconclusive, P(better) = 0.61'."""
    head = f"{item['arm']} better on {len(item['better_on'])} of {item['datasets']} datasets (mean {metric})"
    bayes = item.get("bayes", {})
    if "error" in bayes:
        return f"{head}; across datasets not computable ({bayes['error']})"
    verdict = item.get("verdict") or SignedRank(**bayes).verdict()
    shown = {"better": "P(better)", "worse": "P(worse)", "equivalent": "P(equivalent)"}.get(verdict, "P(better)")
    p = {"P(better)": bayes["p_a_better"], "P(worse)": bayes["p_b_better"], "P(equivalent)": bayes["p_rope"]}[shown]
    words = {"better": f"better than {item['baseline']}", "worse": f"worse than {item['baseline']}",
             "equivalent": f"equivalent to {item['baseline']} (within ±{bayes['rope']:g})"}.get(verdict, "inconclusive")
    note = f" ({item['verdict_note']})" if item.get("verdict_note") else ""
    return f"{head}; across datasets {words}, {shown} = {p:.2f}{note}"


def format_across(across: dict[str, Any]) -> str:
    """The across-dataset block ``harness compare`` prints."""
    lines = [f"across {len(across['datasets'])} datasets ({', '.join(across['datasets'])}); {across['metric']}, "
             f"baseline {across['baseline']}, rope ±{across['rope']:g}:"]
    if across["dropped"]:
        lines.append(f"  left out (an arm has no score there): {', '.join(across['dropped'])}")
    for item in across["arms"]:
        lines.append(f"  {item['sentence']}")
        bayes, wil = item["bayes"], item["wilcoxon"]
        if "error" not in bayes:
            lines.append(f"    Bayesian signed-rank: P(better) {bayes['p_a_better']:.3f}, P(rope) {bayes['p_rope']:.3f}, "
                         f"P(worse) {bayes['p_b_better']:.3f}")
        lines.append(f"    Wilcoxon: {wil['error']}" if "error" in wil else
                     f"    Wilcoxon signed-rank: W = {wil['statistic']:.4g}, p = {wil['pvalue']:.4g} (n = {wil['n']})")
    fr = across["friedman"]
    if "error" in fr:
        lines.append(f"  Friedman: {fr['error']}")
    else:
        ranks = ", ".join(f"{a} {r:.2f}" for a, r in fr["mean_ranks"].items())
        lines.append(f"  Friedman chi2 = {fr['statistic']:.3f}, p = {fr['pvalue']:.4g}; mean ranks {ranks}; "
                     f"Nemenyi CD = {fr['critical_difference']:.3f}" + (f" ({fr['note']})" if "note" in fr else ""))
    if across["cd_diagram"]:
        lines.append(f"  {across['cd_diagram']}")
    lines.append(f"  hierarchical model: {across['hierarchical']}")
    if "verdict_rule" in across:  # across.json written before the rule was recorded lacks it
        lines.append(f"  verdicts: {across['verdict_rule']}")
    return "\n".join(lines)
