"""Where the variance comes from (Bouthillier et al. 2021): each seed source's share of an arm's score variance.

The unit is one repeat's score: the mean over its k folds (the number a k-fold CV reports). A
one-at-a-time design (``cv.variance``) gives, per source, ``seeds`` repeats that differ only in that
source's seed; the sample variance across them estimates the variance that source alone puts into
the k-fold mean, with a chi-square interval ((n-1) s^2 / chi2, normal scores assumed). With
``together`` the variance with every listed source varying is the total (the components add up to it
when the sources act independently). ``cv.vary`` designs give one such group: the listed sources at once.

Because the seeds do not depend on the arm, repeat r of arm A and of arm B share every seed: the
design is paired per seed setting. :func:`p_better` is the share of matched seed settings where A's
k-fold mean beats B's, with a Wilson interval: the chance that A wins a rerun with fresh seeds of
the varied sources on this dataset (not a probability that A is better in general).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from harness.seeds import TOGETHER, SeedGroup, describe, seed_groups, seed_key

NAMES = {"split": "data split", "init": "weight init", "order": "data order", "augment": "augmentation",
         TOGETHER: "all together", "all": "all sources"}


def variance_interval(values: np.ndarray, alpha: float = 0.05) -> dict[str, Any]:
    """Sample variance (ddof 1) of ``values`` with its chi-square interval (normal scores assumed)."""
    from scipy.stats import chi2

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 2:
        return {"n": n, "error": f"{n} finite score(s); a variance needs 2 or more"}
    var = float(np.var(x, ddof=1))
    dof = n - 1
    low, high = dof * var / chi2.ppf(1 - alpha / 2, dof), dof * var / chi2.ppf(alpha / 2, dof)
    return {"n": n, "variance": var, "sd": math.sqrt(var), "low": float(low), "high": float(high),
            "sd_low": math.sqrt(low), "sd_high": math.sqrt(high), "method": "chi-square, n-1 dof"}


def wilson(successes: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion (``successes`` may be fractional: ties count half)."""
    from scipy.stats import norm

    if n == 0:
        return math.nan, math.nan
    z = float(norm.ppf(1 - alpha / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def p_better(a: np.ndarray, b: np.ndarray, higher_is_better: bool = True, alpha: float = 0.05) -> dict[str, Any]:
    """P(A beats B) over matched seed settings: wins (ties half) / n, with a Wilson interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n == 0:
        return {"n": 0, "error": "no matched seed setting with finite scores for both arms"}
    wins = float(np.sum(a > b if higher_is_better else a < b) + 0.5 * np.sum(a == b))
    low, high = wilson(wins, n, alpha)
    return {"n": n, "wins": wins, "p": wins / n, "low": low, "high": high, "method": "Wilson score interval"}


def repeat_scores(results: pd.DataFrame, column: str) -> pd.DataFrame:
    """repeat x arm: each repeat's mean over its folds (NaN when a fold lacks a finite score)."""
    return results.pivot_table(index="repeat", columns="arm", values=column, aggfunc=lambda s: s.mean(skipna=False),
                               dropna=False)


def decompose(scores: pd.Series, groups: list[SeedGroup], alpha: float = 0.05) -> dict[str, Any]:
    """Per group, the variance across its repeats; single-source groups also get their share of the
    sum of single-source variances, and the largest names the dominant source."""
    components: dict[str, dict[str, Any]] = {}
    for group in groups:
        values = scores.reindex(list(group.repeats)).to_numpy(dtype=float)
        components[group.label] = {"sources": sorted(group.sources), **variance_interval(values, alpha)}
    single = {k: v for k, v in components.items() if len(v["sources"]) == 1 and "variance" in v}
    total_single = sum(v["variance"] for v in single.values())
    for item in single.values():
        item["share"] = item["variance"] / total_single if total_single > 0 else None
    out: dict[str, Any] = {"components": components, "dominant": None, "share": None}
    if len(single) >= 2 and total_single > 0:
        dominant = max(single, key=lambda k: single[k]["variance"])
        out.update(dominant=dominant, share=single[dominant]["share"], sum_of_components=total_single)
    together = components.get(TOGETHER)
    if together and "variance" in together:
        out["total"] = together["variance"]
    return out


def sentence(arm: str, item: dict[str, Any]) -> str:
    """'data split dominates: 70 % of the variance ...' (or why no source can be named)."""
    comps = item["components"]
    if item.get("dominant"):
        name, share = item["dominant"], item["share"]
        sds = ", ".join(f"{NAMES.get(k, k)} {v['sd']:.3g}" for k, v in comps.items()
                        if len(v["sources"]) == 1 and "sd" in v)
        text = (f"{arm}: {NAMES.get(name, name)} dominates: {share:.0%} of the variance of the k-fold mean "
                f"(sd per source: {sds})".replace("%", " %"))
        if "total" in item:
            text += (f"; all together: sd {math.sqrt(item['total']):.3g} "
                     f"(the components sum to sd {math.sqrt(item['sum_of_components']):.3g})")
        return text
    parts = [f"{NAMES.get(k, k)} sd {v['sd']:.3g} [{v['sd_low']:.3g}, {v['sd_high']:.3g}]"
             for k, v in comps.items() if "sd" in v]
    return f"{arm}: " + ("; ".join(parts) if parts else "no variance computable") + (
        " (one group of sources varied at once: not decomposed; cv.variance varies them one at a time)"
        if len(comps) == 1 else "")


def distinct_fold_sets(splits: pd.DataFrame, repeats: tuple[int, ...]) -> int:
    """How many different sets of validation folds ``repeats`` have (splits.csv rows); with few groups
    several split seeds can give the same partition."""
    val = splits[(splits["role"] == "val") & splits["repeat"].isin(repeats)]
    sets = {frozenset(frozenset(part["sample_id"].astype(str)) for _, part in rep.groupby("fold"))
            for _, rep in val.groupby("repeat")}
    return len(sets)


def variance_summary(results: pd.DataFrame, cv: Any, column: str, arms: list[str], baseline: str,
                     higher_is_better: bool = True, alpha: float = 0.05,
                     splits: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """The decomposition per arm and P(arm beats baseline) over the matched seed settings; None
    without repeats to compare. With ``splits`` (splits.csv) a split group whose seeds gave fewer
    distinct fold sets than settings is flagged: its variance is then underestimated."""
    groups = seed_groups(cv)
    if not groups or column not in results:
        return None
    scores = repeat_scores(results, column)
    out: dict[str, Any] = {
        "design": describe(cv) or "every source varies with the repeat (cv.vary: all)",
        "unit": f"each repeat's mean {column} over its {int(results['fold'].nunique())} folds",
        "metric": column, "arms": {}, "p_better": {},
        "p_better_label": ("P(A > B) across seed settings: the share of matched seed settings (repeats; every arm "
                           "uses the same seeds) where A's k-fold mean beats B's (ties count half), with a Wilson "
                           f"{1 - alpha:.0%} interval; the chance A wins a rerun with fresh seeds of the varied "
                           "sources on this dataset, not a test of a general difference").replace("%", " %"),
    }
    same_folds = [r for r in range(1, cv.repeats) if seed_key(cv, "split", r) == 0]
    if same_folds:
        out["warning"] = (f"{len(same_folds)} of {cv.repeats} repeats reuse repeat 0's folds (the split seed is fixed "
                          "there): the corrected t and Bayesian correlated t assume every repeat draws new folds, so "
                          "with this design they understate the split's share of the noise; read them with care")
    notes = [out["warning"]] if "warning" in out else []
    for group in groups:
        if splits is not None and "split" in group.sources:
            distinct = distinct_fold_sets(splits, group.repeats)
            if distinct < len(group.repeats):
                notes.append(f"{group.label}: its {len(group.repeats)} split seeds gave only {distinct} distinct set(s) "
                             "of folds (too few groups or samples to split differently), so the split's variance is "
                             "underestimated; add groups or lower cv.folds")
    if notes:
        out["warning"] = "; ".join(notes)
    for arm in arms:
        if arm in scores:
            item = decompose(scores[arm], groups, alpha)
            item["sentence"] = sentence(arm, item)
            out["arms"][arm] = item
    for arm in arms:
        if arm == baseline or arm not in scores or baseline not in scores:
            continue
        per_group = {g.label: p_better(scores[arm].reindex(list(g.repeats)).to_numpy(),
                                       scores[baseline].reindex(list(g.repeats)).to_numpy(), higher_is_better, alpha)
                     for g in groups}
        every = sorted({r for g in groups for r in g.repeats})
        overall = p_better(scores[arm].reindex(every).to_numpy(), scores[baseline].reindex(every).to_numpy(),
                           higher_is_better, alpha)
        out["p_better"][arm] = {"baseline": baseline, "overall": overall, "by_source": per_group}
    return out


def run_design(study: dict[str, Any]) -> Any:
    """The run's ``cv`` settings from its resolved study (every default written out, so read as they are:
    ``repeats``, ``vary``, ``variance``), or None when there is none."""
    from types import SimpleNamespace

    cv = study.get("cv")
    if not isinstance(cv, dict) or "vary" not in cv:
        return None
    variance = cv.get("variance")
    return SimpleNamespace(**{**cv, "variance": SimpleNamespace(**variance) if isinstance(variance, dict) else None})


def format_variance(summary: dict[str, Any]) -> list[str]:
    """compare's text lines: the design, one line per arm, and P(A > B) per arm."""
    lines = [f"  where the variance comes from ({summary['design']}; unit: {summary['unit']}):"]
    lines += [f"    {item['sentence']}" for item in summary["arms"].values()]
    for arm, item in summary["p_better"].items():
        o = item["overall"]
        if "p" not in o:
            lines.append(f"    P({arm} > {item['baseline']}): {o.get('error')}")
            continue
        lines.append(f"    P({arm} > {item['baseline']}) across {o['n']} seed settings = {o['p']:.2f} "
                     f"[{o['low']:.2f}, {o['high']:.2f}] (Wilson; paired per seed setting)")
    return lines
