"""The study is resolved once into a Plan that every study command consumes; a one-dataset study is a one-entry
plan whose folder is the run directory itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from harness.cli.main import main
from harness.errors import StudyError
from harness.pipeline import plan as plan_module
from harness.pipeline.plan import Plan, make_plan
from harness.run.threads import default_threads


def _count_plans(monkeypatch: pytest.MonkeyPatch) -> tuple[list[Plan], list[Path]]:
    """Every plan built (through make_plan) and every study file loaded into one (single-dataset studies)."""
    plans: list[Plan] = []
    loads: list[Path] = []
    real_make, real_load = plan_module.make_plan, plan_module.study_from_data

    def make(*args: Any, **kwargs: Any) -> Plan:
        plans.append(real_make(*args, **kwargs))
        return plans[-1]

    def load(data: Any, lines: Any, source: Path, *rest: Any) -> Any:
        loads.append(source)
        return real_load(data, lines, source, *rest)

    monkeypatch.setattr(plan_module, "make_plan", make)
    monkeypatch.setattr(plan_module, "study_from_data", load)
    return plans, loads


def test_a_single_dataset_study_is_one_entry_run_into_the_run_directory(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan = make_plan(write_study(), ["training.epochs=1"], threads=2)
    out = tmp_path / "run"
    assert plan.kind is None and len(plan.entries) == 1 and plan.ids == []
    assert plan.entries[0].id is None and plan.entries[0].folder(out) == out
    assert list(plan.arms) == ["plain", "se"] and plan.seed == 0 and plan.name == "tiny"
    assert plan.overrides == ("training.epochs=1", "training.threads=2")  # --threads applied once, last
    assert plan.first.spec.training.epochs == 1 and plan.first.spec.training.threads == 2
    with pytest.raises(AttributeError):  # frozen: a command cannot change the plan it was handed
        plan.overrides = ()  # type: ignore[misc]


def test_worker_threads_apply_only_where_the_study_sets_none(write_study) -> None:  # type: ignore[no-untyped-def]
    unset = write_study({"training": {"threads": None}}, name="unset.yaml")
    assert make_plan(unset, worker_threads=3).first.spec.training.threads == 3
    assert make_plan(unset, ["training.threads=5"], worker_threads=3).first.spec.training.threads == 5
    assert make_plan(write_study(), worker_threads=3).overrides == ()  # the study's threads: 1 wins


def test_a_datasets_study_is_one_entry_per_dataset_in_its_own_folder(tmp_path: Path, tiny_study: dict[str, Any]) -> None:
    dataset = tiny_study.pop("dataset")
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump({**tiny_study, "datasets": [{**dataset, "id": "a"}, {**dataset, "id": "b"}]}))
    plan = make_plan(path)
    assert plan.kind == "datasets" and plan.ids == ["a", "b"] and plan.name == "tiny"
    assert [e.folder(tmp_path) for e in plan.entries] == [tmp_path / "datasets" / "a", tmp_path / "datasets" / "b"]
    assert [e.study.name for e in plan.entries] == ["tiny.a", "tiny.b"] and list(plan.arms) == ["plain", "se"]
    path.write_text(yaml.safe_dump({**tiny_study, "datasets": [{**dataset, "id": "a"}, {**dataset, "id": "b",
                                                                                       "image_size": 0}]}))
    with pytest.raises(StudyError) as caught:  # every entry validated, the bad one named by its id
        make_plan(path)
    assert "datasets[b]" in str(caught.value) and "datasets[a]" not in str(caught.value)


def test_run_with_workers_builds_the_plan_once(write_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """``run --workers 2``: the per-worker threads are known before the plan, which is built (and the study
    loaded) once; the worker is started with the plan's overrides; validate and plan STUDY take the same Plan."""
    from harness.cli import main as cli

    plans, loads = _count_plans(monkeypatch)
    started: list[tuple[str, ...]] = []
    monkeypatch.setattr(cli, "spawn_workers", lambda command, plan, *rest: started.append(plan.overrides) or [])
    study = write_study({"training": {"threads": None, "epochs": 1}}, arms={"plain": {"backbone": "resnet20"}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--workers", "2", "--quiet", "--no-report"]) == 0
    assert len(plans) == 1 and loads == [study]
    assert started == [(f"training.threads={default_threads(2)}",)]
    assert plans[0].first.spec.training.threads == default_threads(2)  # this process is one of the two workers
    assert len(pd.read_csv(out / "results.csv")) == 2  # every cell done (by this process: the worker was not started)
    assert main(["validate", str(study), "--no-data"]) == 0
    assert main(["plan", str(study), "--steps", "2", "--json"]) == 0
    assert len(plans) == 3 and all(type(p) is Plan for p in plans) and len(loads) == 3
