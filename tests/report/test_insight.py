"""One metric everywhere (issue 25.3): the study's comparison metric leads the run summary, the per-fold table
and the answer box, which gives each arm's score with its interval and the metric's own trivial baseline."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from harness.cli.main import main
from harness.report.answer import scores_sentence, trivial_baseline
from harness.report.insight import (
    INACTIVE_SD,
    NEAR_HALF,
    flat_gate_sentences,
    flat_gates_sentence,
    gate_statistics,
    read_insight,
)
from harness.report.render import build_report_data, render_report


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


def test_run_summary_and_answer_box_lead_with_the_studys_metric(write_study, capsys) -> None:  # type: ignore[no-untyped-def]
    """A tiny two-arm run on 3 classes compared on balanced accuracy: the printed summary, the answer box and the
    per-fold table all lead with balanced accuracy, and the reference is chance (1/3), not the majority accuracy."""
    study = write_study({"compare": {"metric": "balanced_accuracy"}, "training": {"epochs": 1},
                         "dataset": {"options": {"classes": 3, "per_class": 8}}})
    run_dir = study.parent / "run"
    assert main(["run", str(study), "--out", str(run_dir), "--quiet"]) == 0
    printed = capsys.readouterr().out
    header = printed.splitlines()[0].split()
    assert header[:3] == ["balanced_accuracy", "accuracy", "f1_macro"], printed
    results = pd.read_csv(run_dir / "results.csv")
    plain = next(line for line in printed.splitlines() if line.startswith("plain"))
    assert plain.split()[1] == f"{results[results.arm == 'plain'].balanced_accuracy.mean():.4f}"

    data = build_report_data(run_dir, insight=False)
    assert data.metric == "balanced_accuracy" and data.answer is not None and data.significance is not None
    se = data.significance["arms"][0]
    assert data.answer.scores.startswith("Scores on balanced_accuracy (mean over folds, 95 % interval): plain ")
    assert f"se {100 * se['mean']:.1f} % ({100 * se['interval']['low']:.1f} % to" in data.answer.scores
    assert f"plain {100 * se['baseline_mean']:.1f} %" in data.answer.scores
    assert data.answer.scores.endswith("; chance 33.3 %.")  # 1/3 classes, not the majority class's accuracy
    assert list(data.per_fold[0])[:5] == ["arm", "repeat", "fold", "status", "balanced_accuracy"]
    html = render_report(data)
    assert "chance 33.3 %" in html and "% accuracy (mean over cells" not in html

    # one epoch of SE on phantom data: the gates sit at 0.5, and the verdict says so, printed and in the box
    gates = flat_gate_sentences(read_insight(run_dir))
    assert gates == ["se: SE gates stayed near 0.5 (mean distance from 0.5 at most "
                     f"{max(g['from_half'] for g in read_insight(run_dir)['arms']['se']['gates'].values()):.3f} "  # type: ignore[index]
                     "in every block shown, below 0.05): SE did not act as attention here."]
    assert printed.index(gates[0]) > printed.index("verdict (balanced_accuracy")
    assert build_report_data(run_dir).answer.gates == gates  # type: ignore[union-attr]
    assert gates[0] in (run_dir / "report.html").read_text()

    # compare on another metric: its first line says it answers another question; the study's own (alias): no note
    assert main(["compare", str(run_dir), "--metric", "accuracy"]) == 0
    assert capsys.readouterr().out.startswith("note: the study compared on balanced_accuracy; this compares on "
                                              "accuracy (--metric), which answers another question")
    assert main(["compare", str(run_dir), "--metric", "balanced_acc"]) == 0
    assert capsys.readouterr().out.startswith("balanced_accuracy (higher is better)")


def test_flat_gates_are_named_by_a_documented_threshold() -> None:
    torch.manual_seed(0)
    near_half = gate_statistics({"layer1.se": 0.5 + 0.01 * torch.randn(16, 8, 1, 1)})
    assert flat_gates_sentence("se", near_half).endswith("SE did not act as attention here.")  # type: ignore[union-attr]
    fixed_scale = gate_statistics({"layer1.se": torch.linspace(0.1, 0.9, 8).view(1, 8, 1, 1).repeat(16, 1, 1, 1)})
    assert fixed_scale["layer1.se"]["sd_images"] < INACTIVE_SD and fixed_scale["layer1.se"]["from_half"] > NEAR_HALF
    assert "did not vary between images" in flat_gates_sentence("se", fixed_scale)  # type: ignore[operator]
    lively = gate_statistics({"layer1.se": torch.rand(16, 8, 1, 1), "layer3.se": 0.5 + 0.01 * torch.randn(16, 8, 1, 1)})
    assert flat_gates_sentence("se", lively) is None  # one block that acts is enough
    assert flat_gates_sentence("plain", {}) is None
