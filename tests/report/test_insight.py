"""One metric everywhere (issue 25.3): the study's comparison metric leads the run summary, the per-fold table
and the answer box, which gives each arm's score with its interval and the metric's own trivial baseline."""

from __future__ import annotations

import math

import pandas as pd
import torch

from harness.cli.main import main
from harness.report.insight import (
    INACTIVE_SD,
    NEAR_HALF,
    cam_layer,
    flat_gate_sentences,
    flat_gates_sentence,
    gate_activity,
    gate_statistics,
    insight_fold,
    read_insight,
)
from harness.report.render import build_report_data, render_report


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
