"""The report's answer, per-group scores and insight choices, tested as data (issue 16)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.report.answer import (
    build_answer,
    group_scores,
    scores_sentence,
    trivial_baseline,
    verdict_sentence,
)


def _arm(**extra):  # type: ignore[no-untyped-def]
    arm = {"arm": "se", "baseline": "plain", "n": 5, "mean": 0.82, "baseline_mean": 0.80,
           "differences": [0.01, 0.03, 0.02, 0.02, 0.02], "verdict": "better",
           "tests": {"bayes": {"p_a_better": 0.97, "p_rope": 0.02, "p_b_better": 0.01}}}
    return {**arm, **extra}


def test_verdict_sentence_is_plain_and_uses_the_interval_when_present() -> None:
    without = verdict_sentence(_arm(), "accuracy", 0.01)
    assert without == "se is better than plain: +2.0 points on accuracy; probability it is really better 97 %."
    with_interval = verdict_sentence(_arm(difference=0.02, difference_interval={"low": 0.004, "high": 0.036}),
                                     "accuracy", 0.01)
    assert "(95 % interval +0.4 points to +3.6 points)" in with_interval
    unsure = verdict_sentence(_arm(verdict="inconclusive", tests={"bayes": {"p_a_better": 0.6, "p_rope": 0.3,
                                                                          "p_b_better": 0.1}}), "loss", 0.01)
    assert unsure.startswith("The data cannot tell whether se is better than plain: +0.02 on loss")


def test_answer_has_question_detectable_difference_and_failed_cells() -> None:
    results = pd.DataFrame({"arm": ["plain", "plain", "se", "se"], "repeat": 0, "fold": [0, 1, 0, 1],
                            "training_flag": ["", "best epoch is the first of 8", "", ""]})
    stats = {"metric": "accuracy", "baseline": "plain", "rope": 0.01, "arms": [_arm(min_detectable=0.031)]}
    answer = build_answer({"compare": {"baseline": "plain"}}, stats, results, "5-fold CV")
    assert answer.question == "Does se score differently from plain on accuracy? (5-fold CV)"
    assert answer.detectable == ["se: with 5 paired folds this design detects differences of about 3.1 points "
                                 "or more (80 % power); smaller ones would likely be missed."]
    assert answer.flagged == ["plain repeat 0 fold 1: best epoch is the first of 8"]
    assert answer.sentences[-1].startswith("Caution: 1 cell(s) did not train properly")
    assert answer.plot  # the paired-difference picture
    alone = build_answer({}, None, results[results.arm == "plain"], "5-fold CV")
    assert "one arm, nothing to compare" in alone.question and alone.plot is None


def test_group_scores_average_probabilities_per_group() -> None:
    """Two videos of 3 frames: one frame of each is wrong, but each video's mean probability is right."""
    probs = [0.9, 0.8, 0.4, 0.1, 0.3, 0.6]  # p(class 1); videos v1 (class 1) and v2 (class 0)
    predictions = pd.DataFrame({"arm": "a", "repeat": 0, "fold": [0, 0, 0, 1, 1, 1], "role": "val",
                                "sample_id": [f"s{i}" for i in range(6)], "y_true": [1, 1, 1, 0, 0, 0],
                                "y_pred": [int(p > 0.5) for p in probs], "p_0": [1 - p for p in probs], "p_1": probs})
    splits = pd.DataFrame({"sample_id": [f"s{i}" for i in range(6)], "group": ["v1"] * 3 + ["v2"] * 3,
                           "repeat": 0, "fold": [0, 0, 0, 1, 1, 1], "role": "val"})
    (row,) = group_scores(predictions, splits, 2)
    assert row["units"] == 2 and row["group_accuracy"] == 1.0
    assert row["image_accuracy"] == pytest.approx(4 / 6)
    assert group_scores(predictions, splits.assign(group=""), 2) == []  # no groups, no per-group table


def test_trivial_baseline_is_each_metrics_own() -> None:
    counts = [[30, 10]]  # 75 % majority class
    assert trivial_baseline("balanced_accuracy", counts) == pytest.approx(0.5)
    assert trivial_baseline("accuracy", counts) == pytest.approx(0.75)
    assert trivial_baseline("roc_auc_ovr", counts) == pytest.approx(0.5)
    assert trivial_baseline("recall_macro", counts) == pytest.approx(0.5)
    assert trivial_baseline("precision_macro", counts) == pytest.approx(0.75 / 2)
    assert trivial_baseline("f1_macro", counts) == pytest.approx(2 * 0.75 / 1.75 / 2)  # F1 of the majority, 0 for the rest
    assert trivial_baseline("loss", counts) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert trivial_baseline("test_accuracy", [[1, 3, 4]]) == pytest.approx(0.5)
    assert trivial_baseline("balanced_accuracy", [[5, 5, 5, 5], [6, 2, 2, 2]]) == pytest.approx(0.25)
    assert trivial_baseline("accuracy", [[5, 5], [6, 2]]) == pytest.approx((0.5 + 0.75) / 2)  # mean over scored sets


def test_scores_sentence_names_the_baseline() -> None:
    text = scores_sentence("balanced_accuracy", {"plain": (0.61, 0.55, 0.67), "se": (0.6, math.nan, math.nan)}, 0.5)
    assert text == ("Scores on balanced_accuracy (mean over folds, 95 % interval): plain 61.0 % (55.0 % to 67.0 %); "
                    "se 60.0 %; chance 50.0 %.")
    assert scores_sentence("loss", {"a": (0.7, 0.6, 0.8)}, 0.69).endswith("class frequencies as probabilities 0.69.")
