"""cv.vary end to end: `vary: [init]` with 2 repeats keeps the folds and changes the initial weights;
compare and the report say what varied and where the variance comes from."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.cli.main import main
from harness.report.render import build_report_data, render_report

pytestmark = pytest.mark.slow


def test_vary_init_same_folds_other_init(write_study, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"dataset": {"image_size": 16, "options": {"size": 16, "per_class": 6}, "augment": "light"},
                         "cv": {"folds": 2, "repeats": 2, "vary": ["init"]}, "training": {"epochs": 1}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    splits = pd.read_csv(out / "splits.csv", keep_default_na=False)
    first, second = (splits[splits.repeat == r].drop(columns="repeat").reset_index(drop=True) for r in (0, 1))
    pd.testing.assert_frame_equal(first, second)  # the same folds in both repeats
    for arm in ("plain", "se"):  # ... but other initial weights (nothing else differs between the repeats)
        w0, w1 = (torch.load(p, weights_only=True) for p in sorted((out / "cells" / arm).glob("r*-f0/best.pt")))
        assert any(not torch.equal(w0[k], w1[k]) for k in w0 if w0[k].is_floating_point())
    resolved = (out / "study.yaml").read_text()
    assert "vary:\n  - init" in resolved
    variance = json.loads((out / "stats.json").read_text())["variance"]
    assert "init only" in variance["design"] and variance["p_better"]["se"]["overall"]["n"] == 2
    assert list(variance["arms"]["plain"]["components"]) == ["init"]
    report = render_report(build_report_data(out, insight=False))
    assert "Where the variance comes from" in report and "repeats vary init only" in report
    capsys.readouterr()
    assert main(["compare", str(out)]) == 0
    assert "P(se > plain) across 2 seed settings" in capsys.readouterr().out
