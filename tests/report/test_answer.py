"""The report's answer, per-group scores and insight choices, tested as data (issue 16)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from harness.report.answer import build_answer, group_scores, verdict_sentence
from harness.report.insight import INACTIVE_SD, cam_layer, gate_activity, insight_fold


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


def test_gradcam_layer_is_chosen_by_resolution() -> None:
    import timm

    model = timm.create_model("resnet18", num_classes=2).eval()
    layer, why = cam_layer(model, torch.zeros(1, 3, 64, 64))
    assert layer is model.layer2 and why.startswith("Grad-CAM on layer2 (8x8")  # layer4 would be 2x2
    layer, why = cam_layer(model, torch.zeros(1, 3, 16, 16))
    assert layer is None and "below 7x7" in why and "layer1 4x4" in why


def _gates(sd: float) -> torch.Tensor:
    """8 images x 16 channels whose gates alternate 0.5 +- a between images: the sd across images is ``sd``."""
    signs = torch.tensor([1.0, -1.0] * 4).reshape(8, 1, 1, 1).expand(8, 16, 1, 1)
    return 0.5 + sd / math.sqrt(8 / 7) * signs


def test_attention_inactive_when_gates_barely_vary() -> None:
    below, above = _gates(INACTIVE_SD * 0.95), _gates(INACTIVE_SD * 1.05)
    assert gate_activity({"layer1.se": below}).startswith("attention inactive")
    assert f"layer1.se {INACTIVE_SD * 0.95:.3f}" in gate_activity({"layer1.se": below})
    assert gate_activity({"layer1.se": above}).startswith("gates vary")
    assert gate_activity({"layer1.se": below, "layer2.se": above}).startswith("gates vary")  # one lively block is enough


def test_insight_uses_a_fold_that_trained() -> None:
    results = pd.DataFrame({"arm": "se", "repeat": 0, "fold": [0, 1, 2], "status": ["ok", "ok", "diverged"],
                            "accuracy": [0.9, 0.6, 0.95],
                            "training_flag": ["best epoch is the first of 8", "", ""]})
    assert insight_fold(results, "se")[:2] == (0, 1)  # not the collapsed fold 0, not the diverged fold 2
    assert "no fold of this arm trained" in insight_fold(results.assign(training_flag="x"), "se")[2]
