"""One run path: a multi-dataset plan runs one complete sub-run per dataset in study order, then the across
comparison; a one-dataset plan runs into the run directory itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.pipeline.execute import run_plan
from harness.pipeline.plan import make_plan
from harness.run.runner import RunOptions

SMALL = {"name": "phantom", "image_size": 16, "options": {"classes": 2, "per_class": 6, "size": 16, "patients": 4}}


def test_each_dataset_is_a_full_run_and_the_across_comparison_is_written(  # type: ignore[no-untyped-def]
        multi_study, tiny_study: dict[str, Any], tmp_path: Path) -> None:
    tiny_study["training"]["epochs"] = 1
    study = multi_study([{**SMALL, "id": "small"}, {**SMALL, "id": "other", "options": {**SMALL["options"], "seed": 3}}])
    out = tmp_path / "run"
    outcome = run_plan(make_plan(study), RunOptions(out, quiet=True, report=None))
    assert list(outcome.results) == ["small", "other"]
    assert all(sorted(table.arm.unique()) == ["plain", "se"] for table in outcome.results.values())
    assert sorted(p.name for p in (out / "datasets").iterdir()) == ["other", "small"]
    assert (out / "datasets" / "small" / "results.csv").exists()
    assert outcome.across is not None
    assert json.loads((out / "across.json").read_text()).keys() == outcome.across.keys()


def test_a_one_dataset_plan_runs_into_the_run_directory(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    outcome = run_plan(make_plan(write_study(), ["training.epochs=1"]), RunOptions(out, quiet=True, report=None))
    assert list(outcome.results) == [None] and outcome.across is None
    assert (out / "results.csv").exists() and not (out / "datasets").exists()
    assert sorted(outcome.results[None].arm.unique()) == ["plain", "se"]
