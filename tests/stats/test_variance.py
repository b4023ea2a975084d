"""Where the variance comes from: the decomposition on a simulated design with known components, and
P(A > B) over matched seed settings (numpy only, no training)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.seeds import SOURCES, seed_groups, seed_key
from harness.stats.variance import (
    decompose,
    format_variance,
    p_better,
    variance_interval,
    variance_summary,
    wilson,
)
from harness.study.schema import CVSpec

TRUE_SD = {"split": 0.03, "init": 0.01, "order": 0.005}  # sd of the k-fold mean each source puts in


def simulate(cv: CVSpec, rng: np.random.Generator, arms: dict[str, float], arm_sd: float = 0.0) -> pd.DataFrame:
    """Per-cell scores: arm mean + one effect per (source, seed key, fold) shared by every arm (the seeds
    do not depend on the arm) + arm-specific noise per repeat. Per-fold effects have sd * sqrt(k), so
    each source puts exactly TRUE_SD[source]^2 of variance into a repeat's k-fold mean."""
    k, repeats = cv.folds, cv.repeats
    shared = np.zeros((repeats, k))
    for s in SOURCES:
        effects = rng.normal(0, TRUE_SD.get(s, 0.0) * math.sqrt(k), (repeats, k))
        shared += effects[[seed_key(cv, s, r) for r in range(repeats)]]
    frames = []
    for arm, mean in arms.items():
        scores = mean + shared + rng.normal(0, arm_sd, (repeats, 1))
        frames.append(pd.DataFrame({"arm": arm, "repeat": np.repeat(np.arange(repeats), k),
                                    "fold": np.tile(np.arange(k), repeats), "accuracy": scores.ravel()}))
    return pd.concat(frames, ignore_index=True)


def test_decomposition_recovers_known_components() -> None:
    """split sd 0.03, init 0.01, order 0.005 (augment 0): the one-at-a-time variances average to the truth,
    the chi-square intervals cover it about 95 % of the time, and the data split dominates (~88 %)."""
    cv = CVSpec(folds=3, variance={"sources": ["split", "init", "order"], "seeds": 25, "together": True})
    assert cv.repeats == 1 + 4 * 24
    groups = seed_groups(cv)
    rng = np.random.default_rng(19)
    estimates: dict[str, list[float]] = {s: [] for s in ("split", "init", "order", "together")}
    covered = {s: 0 for s in estimates}
    dominant = []
    replications = 60
    for _ in range(replications):
        scores = simulate(cv, rng, {"a": 0.8}).groupby("repeat")["accuracy"].mean()
        out = decompose(scores, groups)
        dominant.append(out["dominant"])
        truth = {**{s: TRUE_SD[s] ** 2 for s in TRUE_SD}, "together": sum(v**2 for v in TRUE_SD.values())}
        for label, item in out["components"].items():
            estimates[label].append(item["variance"])
            covered[label] += item["low"] <= truth[label] <= item["high"]
    for label, values in estimates.items():
        assert np.mean(values) == pytest.approx(truth[label], rel=0.15), label
        assert 0.85 <= covered[label] / replications <= 1.0, label
    assert dominant.count("split") == replications
    share = TRUE_SD["split"] ** 2 / sum(v**2 for v in TRUE_SD.values())
    assert np.mean([decompose(simulate(cv, rng, {"a": 0.8}).groupby("repeat")["accuracy"].mean(), groups)["share"]
                    for _ in range(10)]) == pytest.approx(share, abs=0.06)


def test_variance_interval_matches_the_chi_square_formula() -> None:
    from scipy.stats import chi2

    x = np.array([0.80, 0.82, 0.79, 0.85, 0.81])
    out = variance_interval(x)
    s2 = np.var(x, ddof=1)
    assert out["variance"] == pytest.approx(s2)
    assert out["low"] == pytest.approx(4 * s2 / chi2.ppf(0.975, 4))
    assert out["high"] == pytest.approx(4 * s2 / chi2.ppf(0.025, 4))
    assert "error" in variance_interval(np.array([0.8, np.nan]))


def test_wilson_and_p_better_on_a_known_case() -> None:
    """7 wins of 10: Wilson 95 % interval [0.3968, 0.8922] (the textbook value); a tie counts half."""
    low, high = wilson(7, 10)
    assert (low, high) == pytest.approx((0.3968, 0.8922), abs=1e-4)
    a = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.9, 0.9, 0.1, 0.1, 0.5])
    b = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 0.5])  # 7 wins, 2 losses, 1 tie
    out = p_better(a, b)
    assert out["wins"] == 7.5 and out["p"] == 0.75
    assert p_better(a, b, higher_is_better=False)["p"] == 0.25  # lower is better: the other way round


def test_p_better_recovers_a_known_probability() -> None:
    """Paired per seed setting: the shared seed effects cancel, so P(A > B) = Phi(delta / sd of the
    arm-specific noise difference) = Phi(0.01 / (0.01 * sqrt(2))) = 0.760, whatever the split's spread."""
    from scipy.stats import norm

    cv = CVSpec(folds=2, repeats=100)  # the default: every source varies with the repeat
    rng = np.random.default_rng(7)
    truth = float(norm.cdf(0.01 / (0.01 * math.sqrt(2))))
    ps, covered = [], 0
    for _ in range(30):
        out = variance_summary(simulate(cv, rng, {"a": 0.81, "b": 0.80}, arm_sd=0.01), cv, "accuracy", ["b", "a"], "b")
        assert out is not None
        o = out["p_better"]["a"]["overall"]
        ps.append(o["p"])
        covered += o["low"] <= truth <= o["high"]
    assert np.mean(ps) == pytest.approx(truth, abs=0.03)
    assert covered >= 25 and out is not None
    assert out["arms"]["a"]["components"]["all"]["n"] == 100 and "warning" not in out  # new folds every repeat


def test_summary_of_a_vary_design_names_its_group_and_formats() -> None:
    cv = CVSpec(folds=2, repeats=6, vary=["init"])
    out = variance_summary(simulate(cv, np.random.default_rng(0), {"a": 0.8, "b": 0.7}), cv, "accuracy", ["a", "b"], "a")
    assert out is not None and list(out["arms"]["a"]["components"]) == ["init"]
    assert "init only" in out["design"] and "5 of 6 repeats reuse repeat 0's folds" in out["warning"]
    assert out["p_better"]["b"]["overall"]["p"] == 0.0  # b is 0.1 lower in every matched seed setting
    text = "\n".join(format_variance(out))
    assert "P(b > a) across 6 seed settings = 0.00" in text and "weight init sd" in text
    assert variance_summary(simulate(CVSpec(folds=2), np.random.default_rng(0), {"a": 0.8}), CVSpec(folds=2),
                            "accuracy", ["a"], "a") is None  # one repeat: nothing to decompose


def test_one_at_a_time_sentence_names_the_dominant_source() -> None:
    cv = CVSpec(folds=2, variance={"sources": ["split", "init"], "seeds": 30})
    out = variance_summary(simulate(cv, np.random.default_rng(3), {"a": 0.8}), cv, "accuracy", ["a"], "a")
    assert out is not None
    sentence = out["arms"]["a"]["sentence"]
    assert sentence.startswith("a: data split dominates: ") and " % of the variance" in sentence


def test_split_seeds_that_repeat_a_partition_are_flagged() -> None:
    """Few groups: two split seeds can give the same folds; the split's variance is then flagged."""
    cv = CVSpec(folds=2, variance={"sources": ["split", "init"], "seeds": 3})  # split group: repeats 0, 1, 2
    parts = {0: (["a", "b"], ["c", "d"]), 1: (["a", "c"], ["b", "d"]), 2: (["c", "d"], ["a", "b"])}  # 2 == 0
    rows = [{"repeat": r, "fold": f, "role": "val", "sample_id": s}
            for r in range(cv.repeats) for f, ids in enumerate(parts.get(r, parts[0])) for s in ids]
    splits = pd.DataFrame(rows)
    from harness.stats.variance import distinct_fold_sets

    assert distinct_fold_sets(splits, (0, 1, 2)) == 2 and distinct_fold_sets(splits, (0, 1)) == 2
    results = simulate(cv, np.random.default_rng(1), {"a": 0.8})
    out = variance_summary(results, cv, "accuracy", ["a"], "a", splits=splits)
    assert out is not None and "split: its 3 split seeds gave only 2 distinct set(s) of folds" in out["warning"]
    assert "reuse repeat 0's folds" in out["warning"]  # the init repeats keep repeat 0's folds
    splits.loc[(splits.repeat == 2) & (splits.fold == 0), "sample_id"] = ["a", "d"]
    splits.loc[(splits.repeat == 2) & (splits.fold == 1), "sample_id"] = ["b", "c"]
    again = variance_summary(results, cv, "accuracy", ["a"], "a", splits=splits)
    assert again is not None and "distinct" not in again["warning"]
