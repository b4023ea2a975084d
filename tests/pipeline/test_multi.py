"""A multi-dataset study run: one complete sub-run per dataset in study order, then the across comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.pipeline.multi import run_multi
from harness.run.runner import RunOptions
from harness.study.multi import load_multi

SMALL = {"name": "phantom", "image_size": 16, "options": {"classes": 2, "per_class": 6, "size": 16, "patients": 4}}


def test_each_dataset_is_a_full_run_and_the_across_comparison_is_written(  # type: ignore[no-untyped-def]
        multi_study, tiny_study: dict[str, Any], builtin_registry, tmp_path: Path) -> None:
    tiny_study["training"]["epochs"] = 1
    study = multi_study([{**SMALL, "id": "small"}, {**SMALL, "id": "other", "options": {**SMALL["options"], "seed": 3}}])
    out = tmp_path / "run"
    results, across = run_multi(load_multi(study), builtin_registry, RunOptions(out, quiet=True, report=None))
    assert list(results) == ["small", "other"]
    assert all(sorted(table.arm.unique()) == ["plain", "se"] for table in results.values())
    assert sorted(p.name for p in (out / "datasets").iterdir()) == ["other", "small"]
    assert (out / "datasets" / "small" / "results.csv").exists()
    assert json.loads((out / "across.json").read_text()).keys() == across.keys()
