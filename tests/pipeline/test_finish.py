"""What a run calls at its end: the insight data computed once and stored, then the report from stored files."""

from __future__ import annotations

import json
from pathlib import Path

from harness.pipeline.finish import report_writer
from harness.run.runner import RunOptions, run_study
from harness.study.loader import load_study


def test_the_report_writer_stores_the_insight_then_renders_the_report(write_study, builtin_registry,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    study = load_study(write_study({"training": {"epochs": 1}, "dataset": {"image_size": 16, "options": {"size": 16}}}))
    run = tmp_path / "run"
    run_study(study, builtin_registry, RunOptions(run, quiet=True, report=None))
    assert not (run / "report.html").exists() and not (run / "insight.json").exists()
    report_writer(builtin_registry)(run)
    insight = json.loads((run / "insight.json").read_text())
    assert set(insight["arms"]) == {"plain", "se"}
    html = (run / "report.html").read_text()
    assert "<html" in html and "plain" in html and "se" in html
