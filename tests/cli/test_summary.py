"""What ``harness run`` prints at its end, for one dataset and for several."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.cli.summary import print_outcome
from harness.pipeline.execute import run_plan
from harness.pipeline.plan import Plan, make_plan
from harness.run.runner import RunOptions


def _printed(plan: Plan, out: Path, capsys: pytest.CaptureFixture[str], *, report: bool = False) -> str:
    """What run prints at its end for ``plan``, run into ``out``."""
    outcome = run_plan(plan, RunOptions(out, quiet=True, report=None))
    capsys.readouterr()
    print_outcome(plan, outcome, out, report=report)
    return capsys.readouterr().out


def test_one_dataset_prints_its_table_verdicts_and_where_the_files_are(  # type: ignore[no-untyped-def]
        write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = make_plan(write_study(), ["training.epochs=1"])
    out = tmp_path / "run"
    printed = _printed(plan, out, capsys)
    assert "plain" in printed and "se" in printed
    assert f"results: {out / 'results.csv'}" in printed and "report:" not in printed
    assert f"report:  {out / 'report.html'}" in _printed(plan, out, capsys, report=True)  # the finished cells reused


def test_several_datasets_print_each_entry_and_the_comparison(  # type: ignore[no-untyped-def]
        multi_study, tiny_study: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_study["training"]["epochs"] = 1
    small = {"name": "phantom", "image_size": 16, "options": {"classes": 2, "per_class": 6, "size": 16, "patients": 4}}
    plan = make_plan(multi_study([{**small, "id": "a"}, {**small, "id": "b", "options": {**small["options"], "seed": 3}}]))
    out = tmp_path / "run"
    printed = _printed(plan, out, capsys)
    assert "dataset a:" in printed and "dataset b:" in printed
    assert f"across datasets: {out / 'across.json'}" in printed
