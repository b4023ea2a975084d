"""compare_run, harness compare/plan and the run verdict on synthetic run directories (no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from harness.cli.main import main
from harness.run.analysis import compare_run
from harness.stats.compare import format_verdicts


def make_run(root: Path, scores: dict[str, np.ndarray], *, metric_column: str = "accuracy", folds: int = 5,
             compare: dict | None = None, test_probs: dict[str, np.ndarray] | None = None,
             oof_correct: dict[str, np.ndarray] | None = None, groups: np.ndarray | None = None,
             y_test: np.ndarray | None = None) -> Path:
    """results.csv (scores[arm] has one value per (repeat, fold) in order), study.yaml and optional predictions.

    test_probs[arm]: (cells, n_test, 2) probabilities per fold model; oof_correct[arm]: per-sample correctness of
    repeat 0's out-of-fold predictions (binary labels all 1); groups: one per OOF sample.
    """
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for arm, values in scores.items():
        for i, value in enumerate(values):
            rows.append({"arm": arm, "repeat": i // folds, "fold": i % folds, "status": "ok", metric_column: value,
                         "accuracy": value if metric_column == "accuracy" else 0.5, "n_train": 80 * (folds - 1),
                         "n_val": 80})
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    study = {"name": "synthetic", "seed": 0, "cv": {"folds": folds, "repeats": len(next(iter(scores.values()))) // folds},
             "compare": compare or {"baseline": next(iter(scores))}}
    (root / "study.yaml").write_text(yaml.safe_dump(study))
    frames = []
    if oof_correct is not None:
        n = len(next(iter(oof_correct.values())))
        ids = [f"s{i:04d}" for i in range(n)]
        for arm, correct in oof_correct.items():
            pred = np.where(correct, 1, 0)
            frames.append(pd.DataFrame({"arm": arm, "repeat": 0, "fold": np.arange(n) % folds, "role": "val",
                                        "sample_id": ids, "y_true": 1, "y_pred": pred,
                                        "p_0": 1.0 - pred, "p_1": pred.astype(float)}))
        split_groups = groups.astype(str) if groups is not None else ""
        pd.DataFrame({"sample_id": ids, "group": split_groups, "repeat": 0, "fold": 0, "role": "val"}).to_csv(
            root / "splits.csv", index=False)
    if test_probs is not None:
        assert y_test is not None
        for arm, probs in test_probs.items():
            for cell, p in enumerate(probs):
                frames.append(pd.DataFrame({"arm": arm, "repeat": cell // folds, "fold": cell % folds, "role": "test",
                                            "sample_id": [f"t{i:04d}" for i in range(len(y_test))], "y_true": y_test,
                                            "y_pred": p.argmax(1), "p_0": p[:, 0], "p_1": p[:, 1]}))
    if frames:
        pd.concat(frames).to_csv(root / "predictions.csv", index=False)
    return root


def test_loss_lower_is_better_in_verdict_and_friedman(tmp_path: Path) -> None:
    """Old code: the arm with the lower loss was called 'worse' and ranked last."""
    rng = np.random.default_rng(0)
    base = 0.70 + rng.normal(0, 0.01, 10)
    run = make_run(tmp_path / "run", {"base": base, "se": base - 0.05 + rng.normal(0, 0.005, 10),
                                      "worse": base + 0.05 + rng.normal(0, 0.005, 10)},
                   metric_column="loss", compare={"baseline": "base", "metric": "loss"})
    c = compare_run(run)
    by_arm = {item.arm: item for item in c.arms}
    assert c.metric == "loss" and not c.higher_is_better
    assert by_arm["se"].verdict == "better" and "se is better than base" in by_arm["se"].verdict_text
    assert by_arm["worse"].verdict == "worse"
    assert by_arm["se"].tests["bayes"]["p_a_better"] > 0.95
    ranks = c.friedman["mean_ranks"]
    assert ranks["se"] == 1.0 and ranks["worse"] == 3.0


def test_compare_reads_study_settings_and_writes_stats_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(1)
    base = 0.8 + rng.normal(0, 0.01, 10)
    run = make_run(tmp_path / "run", {"a": base + 0.02, "b": base}, compare={"baseline": "b", "alpha": 0.01, "rope": 0.005})
    assert main(["compare", str(run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["baseline"], shown["alpha"], shown["rope"]) == ("b", 0.01, 0.005)
    assert not (run / "stats.json").exists()
    assert main(["compare", str(run), "--metric", "acc", "--write"]) == 0
    assert json.loads((run / "stats.json").read_text())["metric"] == "accuracy"


def test_compare_unknown_metric_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run", {"a": np.linspace(0.7, 0.8, 10), "b": np.linspace(0.6, 0.8, 10)})
    assert main(["compare", str(run), "--metric", "accuarcy"]) == 2
    assert "did you mean 'accuracy'" in capsys.readouterr().err


def test_corrected_intervals_and_min_detectable(tmp_path: Path) -> None:
    """Each arm's interval uses s^2 (1/n + n_test/n_train) with t(n-1) (not sd/sqrt n), clipped to [0, 1]."""
    from scipy import stats

    a = np.array([0.99, 1.0, 0.97, 1.0, 0.985, 0.995, 1.0, 0.96, 0.99, 1.0])
    b = a - np.array([0.01, 0.02, -0.01, 0.0, 0.03, 0.01, 0.02, 0.0, 0.015, 0.005])
    c = compare_run(make_run(tmp_path / "run", {"a": a, "b": b}, compare={"baseline": "b"}))
    item = c.arms[0]
    ratio = 80 / 320
    half = stats.t.ppf(0.975, 9) * math.sqrt((1 / 10 + ratio) * np.var(a, ddof=1))
    assert item.interval["low"] == pytest.approx(a.mean() - half)
    assert item.interval["high"] == 1.0 and "clipped" in item.interval["method"]
    d = a - b
    half_d = stats.t.ppf(0.975, 9) * math.sqrt((1 / 10 + ratio) * np.var(d, ddof=1))
    assert (item.difference_interval["low"], item.difference_interval["high"]) == (
        pytest.approx(d.mean() - half_d), pytest.approx(d.mean() + half_d))
    assert item.min_detectable > half_d  # 80 % power needs more than the interval's half-width
    assert item.detectable_floor < item.min_detectable


def test_inconclusive_says_what_would_help_not_more_repeats(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = 0.8 + rng.normal(0, 0.03, 10)
    run = make_run(tmp_path / "run", {"a": base + rng.normal(0.0, 0.03, 10), "b": base})
    item = compare_run(run).arms[0]
    assert item.verdict == "inconclusive"
    assert "more folds or repeats would sharpen this" not in item.verdict_text
    assert "more repeats can lower that only to" in item.verdict_text and "n_test/n_train floor" in item.verdict_text


def test_identical_arms_are_equivalent(tmp_path: Path) -> None:
    """Old code: 'not computable' (variance 0). baycomp: P(rope) = 1."""
    scores = np.array([0.81, 0.79, 0.8, 0.83, 0.78] * 2)
    item = compare_run(make_run(tmp_path / "run", {"a": scores.copy(), "b": scores.copy()})).arms[0]
    assert item.verdict == "equivalent" and item.tests["bayes"]["p_rope"] == 1.0
    assert "variance is 0" in item.tests["corrected_t"]["error"]


def test_held_out_test_scores_get_a_per_sample_test(tmp_path: Path) -> None:
    """Old code ran the corrected (CV) t-test on test_accuracy; now: averaged fold models, exact McNemar."""
    rng = np.random.default_rng(4)
    n_test, cells = 60, 5
    y = rng.integers(0, 2, n_test)

    def probs(shift: float) -> np.ndarray:
        p1 = np.clip(0.5 + (2 * y - 1) * (0.2 + shift) + rng.normal(0, 0.25, (cells, n_test)), 0.01, 0.99)
        return np.stack([1 - p1, p1], axis=-1)

    pa, pb = probs(0.05), probs(0.0)
    scores = {"a": (pa.argmax(-1) == y).mean(1), "b": (pb.argmax(-1) == y).mean(1)}
    run = make_run(tmp_path / "run", scores, metric_column="test_accuracy", compare={"baseline": "b", "metric": "test_accuracy"},
                   test_probs={"a": pa, "b": pb}, y_test=y)
    c = compare_run(run)
    item = c.arms[0]
    assert c.scope == "held-out test set" and "not used on test scores" in c.method
    assert "not used on held-out test scores" in item.tests["corrected_t"]["error"]
    ya, yb = pa.mean(0).argmax(1), pb.mean(0).argmax(1)
    ca, cb = ya == y, yb == y
    table = [[int(np.sum(ca & cb)), int(np.sum(ca & ~cb))], [int(np.sum(~ca & cb)), int(np.sum(~ca & ~cb))]]
    assert item.tests["test_set"]["pvalue"] == pytest.approx(sm_mcnemar(table, exact=True).pvalue)
    assert item.difference == pytest.approx(ca.mean() - cb.mean())
    assert item.tests["samples"]["models_averaged"] == cells
    assert "conditional on these trained models" in item.tests["samples"]["scope"]
    assert item.holm_p == pytest.approx(item.tests["test_set"]["pvalue"])


def test_pooled_oof_tests_cluster_by_group_and_say_what_they_are(tmp_path: Path) -> None:
    """40 groups x 8 samples whose correctness is shared within a group: the plain McNemar treats 320 samples
    as independent; the clustered one sees 40 groups (old code: no clustering, no label)."""
    rng = np.random.default_rng(5)
    groups = np.repeat(np.arange(40), 8)
    group_a, group_b = rng.random(40) < 0.65, rng.random(40) < 0.5
    ca, cb = group_a[groups], group_b[groups]
    scores = {"a": 0.7 + rng.normal(0, 0.02, 10), "b": 0.68 + rng.normal(0, 0.02, 10)}
    run = make_run(tmp_path / "run", scores, compare={"baseline": "b"}, oof_correct={"a": ca, "b": cb}, groups=groups)
    item = compare_run(run).arms[0]
    clustered = item.tests["mcnemar"]
    b, c = int(np.sum(ca & ~cb)), int(np.sum(~ca & cb))
    naive = sm_mcnemar([[0, b], [c, 0]], exact=False, correction=False)
    assert clustered["test"] == "clustered mcnemar" and "40 groups" in clustered["assumption"]
    assert clustered["pvalue"] > naive.pvalue  # independence was overstating the evidence
    assert "conditional on these trained models" in clustered["scope"]
    boot = item.tests["bootstrap_accuracy"]
    assert "cluster bootstrap" in boot["method"] and boot["low"] < boot["estimate"] < boot["high"]


def test_wilcoxon_and_friedman_run_on_per_repeat_means(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    base = 0.8 + rng.normal(0, 0.01, 30)  # 5 folds x 6 repeats
    run = make_run(tmp_path / "run", {"a": base + 0.01 + rng.normal(0, 0.01, 30), "b": base, "c": base - 0.01})
    c = compare_run(run)
    item = c.arms[0]
    assert item.tests["wilcoxon"]["n"] == 6 and item.tests["wilcoxon"]["blocks"] == "on the 6 per-repeat means"
    assert c.friedman["n"] == 6 and c.friedman["blocks"] == "on the 6 per-repeat means"
    single = compare_run(make_run(tmp_path / "one", {"a": base[:5] + 0.01, "b": base[:5]}))
    assert "anti-conservative" in single.arms[0].tests["wilcoxon"]["blocks"]


def test_friedman_with_a_failed_fold_is_explained(tmp_path: Path) -> None:
    base = np.linspace(0.7, 0.8, 10)
    broken = base + 0.01
    broken[3] = np.nan
    c = compare_run(make_run(tmp_path / "run", {"a": base, "b": broken, "c": base - 0.01}))
    assert "lack a finite accuracy" in c.friedman["error"]
    assert any("left out" in w for w in c.warnings)


def test_run_verdict_lines_and_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(7)
    base = 0.8 + rng.normal(0, 0.02, 10)
    run = make_run(tmp_path / "run", {"a": base + 0.03 + rng.normal(0, 0.01, 10), "b": base}, compare={"baseline": "b"})
    text = format_verdicts(compare_run(run))
    assert "a: difference +0.0" in text and "P(better)" in text and "P(equivalent)" in text and "detectable >=" in text
    assert main(["plan", str(run), "--effect", "0.01"]) == 0
    out = capsys.readouterr().out
    assert "5 folds:" in out and "10 folds:" in out
    assert main(["plan", str(run), "--effect", "0.0001"]) == 0
    assert "no number of repeats can" in capsys.readouterr().out
    assert main(["plan", str(run), "--effect", "-1"]) == 2


def test_harness_run_ends_with_the_verdict(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    """A real tiny run (ResNet-20, 32 px, 2 folds, 1 epoch): the last lines answer the question, not only a table."""
    study = write_study({"training": {"epochs": 1}})
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--quiet", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "verdict (accuracy, higher is better, cross-validation; vs plain):" in out
    assert "  se: difference " in out and "P(equivalent)" in out
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert "min_detectable" in stats["arms"][0] and stats["arms"][0]["difference_interval"] is not None


def test_held_out_f1_with_groups_uses_a_clustered_randomization_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    n_test, cells = 48, 4
    y = np.tile([0, 1], n_test // 2)
    test_groups = np.repeat(np.arange(12), 4)
    shift = rng.normal(0, 0.3, 12)[test_groups]  # patient-level effects shared by both arms

    def probs() -> np.ndarray:
        p1 = np.clip(0.5 + (2 * y - 1) * 0.15 + shift * 0.3 + rng.normal(0, 0.2, (cells, n_test)), 0.01, 0.99)
        return np.stack([1 - p1, p1], axis=-1)

    pa, pb = probs(), probs()
    run = make_run(tmp_path / "run", {"a": np.full(cells, 0.6), "b": np.full(cells, 0.6)}, folds=2,
                   metric_column="test_f1_macro", compare={"baseline": "b", "metric": "test_f1"},
                   test_probs={"a": pa, "b": pb}, y_test=y)
    ids = [f"t{i:04d}" for i in range(n_test)]
    pd.DataFrame({"sample_id": ids, "group": [f"P{g}" for g in test_groups], "repeat": 0, "fold": 0,
                  "role": "test"}).to_csv(run / "splits.csv", index=False)
    item = compare_run(run).arms[0]
    test = item.tests["test_set"]
    assert test["test"] == "paired randomization" and "per group" in test["assumption"] and 0 < test["pvalue"] <= 1
    assert "cluster bootstrap" in item.tests["bootstrap"]["method"]
    assert item.tests["samples"]["groups"] == 12
    from sklearn.metrics import f1_score

    expected = (f1_score(y, pa.mean(0).argmax(1), average="macro") - f1_score(y, pb.mean(0).argmax(1), average="macro"))
    assert item.difference == pytest.approx(expected)
    assert abs(item.tests["bayes"]["p_a_better"] + item.tests["bayes"]["p_rope"] + item.tests["bayes"]["p_b_better"] - 1) < 1e-9


def test_compare_on_another_metric_than_the_studys_says_so_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Old code: compare --metric loss on an accuracy study answered silently (issue 25.3)."""
    rng = np.random.default_rng(9)
    base = 0.5 + rng.normal(0, 0.02, 10)
    run = make_run(tmp_path / "run", {"a": base + rng.normal(0, 0.02, 10), "b": base, "c": base - 0.01},
                   metric_column="loss", compare={"baseline": "b"})
    assert main(["compare", str(run), "--metric", "loss"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("note: the study compared on accuracy; this compares on loss (--metric)")
    assert main(["compare", str(run), "--metric", "loss", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["study_metric"] == "accuracy" and "answers another question" in shown["metric_note"]
    for same in (["--metric", "acc"], []):
        assert main(["compare", str(run), *same]) == 0
        out = capsys.readouterr().out
        assert not out.startswith("note:") and "conditional on this dataset" in out  # Friedman's line says what it is
    assert json.loads(compare_run(run).to_json())["metric_note"] == ""


def test_within_dataset_rank_tests_and_the_verdict_rule_are_labelled(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    base = 0.8 + rng.normal(0, 0.01, 30)
    c = json.loads(compare_run(make_run(tmp_path / "run", {"a": base + 0.01, "b": base, "c": base - 0.01})).to_json())
    tests = c["arms"][0]["tests"]
    assert "conditional on this dataset" in tests["wilcoxon"]["scope"] and "conditional" in c["friedman"]["scope"]
    assert "reference only" in tests["paired_t"]["scope"] and "scope" not in tests["corrected_t"]
    assert "0.975" in c["verdict_rule"] and "0.975" in format_verdicts(compare_run(tmp_path / "run"))


def test_compare_is_pure_on_frames_and_matches_the_run_directory(tmp_path: Path) -> None:
    """stats.compare needs only frames: the same numbers as compare_run, which reads them through rundir."""
    from harness.stats.compare import compare
    from harness.stats.scores import groups_of, run_scores

    rng = np.random.default_rng(3)
    base = 0.7 + rng.normal(0, 0.01, 10)
    run = make_run(tmp_path / "run", {"b": base, "a": base + 0.02 + rng.normal(0, 0.005, 10)},
                   oof_correct={"a": rng.random(200) < 0.8, "b": rng.random(200) < 0.7},
                   groups=np.arange(200) % 20)
    study = yaml.safe_load((run / "study.yaml").read_text())
    results, predictions = pd.read_csv(run / "results.csv"), pd.read_csv(run / "predictions.csv")
    groups = groups_of(pd.read_csv(run / "splits.csv", dtype=str))
    assert groups is not None and len(groups) == 200
    scores = run_scores(results, study["compare"], predictions, groups)
    from_frames = json.loads(compare(scores, study).to_json())
    assert from_frames == json.loads(compare_run(run).to_json())
    assert from_frames["arms"][0]["tests"]["bayes"]["p_a_better"] > 0.9  # a real comparison, not an empty one


def test_two_arms_that_never_learned_are_not_called_equivalent() -> None:
    """Both arms stuck at the majority rate in every fold score the same: that is two failures, not equivalence."""
    from harness.stats.compare import compare
    from harness.stats.flags import NEVER_LEARNED
    from harness.stats.scores import run_scores

    flag = f"{NEVER_LEARNED} (60.0 %; best 60.0 %)"
    rows = [{"arm": arm, "repeat": r, "fold": f, "accuracy": 0.6, "n_train": 80, "n_val": 20, "training_flag": flag}
            for arm in ("plain", "se") for r in range(2) for f in range(5)]
    failed = pd.DataFrame(rows)
    item = compare(run_scores(failed, {"baseline": "plain"}, None, None), {}).arms[0]
    assert item.verdict == "inconclusive" and "not assessable" in item.verdict_text
    learned = failed.assign(training_flag=np.where(failed["arm"] == "se", "", flag))  # one arm did learn: judged
    assert compare(run_scores(learned, {"baseline": "plain"}, None, None), {}).arms[0].verdict == "equivalent"
