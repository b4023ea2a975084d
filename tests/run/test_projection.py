"""``harness plan STUDY``: a measured slice projects the study's wall time; ``plan RUN --effect``: each design's time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.cli.main import main
from harness.run.projection import design_seconds, duration, steps_per_epoch
from harness.run.runner import RunOptions, run_study
from harness.study.loader import load_study


def test_a_tiny_studys_real_wall_time_lands_inside_the_projected_interval(
        write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str], builtin_registry) -> None:  # type: ignore[no-untyped-def]
    study_file = write_study({"cv": {"folds": 2, "repeats": 2}, "training": {"epochs": 2}})
    assert main(["plan", str(study_file), "--json", "--steps", "3"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["low"] < plan["projected_seconds"] < plan["high"]
    arms = {a["arm"]: a for a in plan["arms"]}
    # 24 images, 2 folds: 12 fit per fold, batch 8 -> 2 steps/epoch; 2 epochs x 2 folds x 2 repeats
    assert arms["se"]["steps"] == 16 and arms["se"]["cells"] == 4 and arms["se"]["compute"] == "cpu/fp32"
    assert arms["se"]["eval_images"] == 4 * (2 * 12 + 12)  # validation every epoch, then once more to score
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]  # plan writes no run

    run_dir = tmp_path / "run"
    run_study(load_study(study_file), builtin_registry, RunOptions(run_dir, quiet=True, report=None, stats=False))
    info = json.loads((run_dir / "run.json").read_text())
    assert plan["low"] <= info["total_seconds"] <= plan["high"], (info["total_seconds"], plan)
    assert info["compute"] == {"plain": {"compute": "cpu/fp32", "deterministic": True},
                               "se": {"compute": "cpu/fp32", "deterministic": True}}


def test_plan_text_and_its_argument_checks(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study_file = write_study({"cv": {"folds": 2}, "training": {"epochs": 1}})
    assert main(["plan", str(study_file), "--steps", "2", "--set", "training.batch_size=4"]) == 0
    out = capsys.readouterr().out
    assert "x 6 steps" in out and "projected wall time:" in out and "not counted: Python start-up" in out
    assert main(["plan", str(study_file), "--steps", "1"]) == 2
    assert "--steps must be at least 2" in capsys.readouterr().err
    assert main(["plan", str(tmp_path)]) == 2  # a folder that is no run, and no --effect
    assert "give --effect" in capsys.readouterr().err
    several = Path(__file__).resolve().parents[2] / "studies" / "across_phantoms.yaml"
    assert main(["plan", str(several)]) == 2 and "lists several datasets" in capsys.readouterr().err


def test_each_proposed_design_gets_its_wall_time_from_the_runs_cell_times(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    rows = [{"arm": arm, "repeat": 0, "fold": f, "status": "ok", "accuracy": 0.8 + shift + rng.normal(0, 0.02),
             "n_train": 400, "n_val": 100, "seconds": 10.0 + f} for arm, shift in (("a", 0.0), ("b", 0.03))
            for f in range(5)]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({"name": "s", "seed": 0, "cv": {"folds": 5, "repeats": 1},
                                                         "compare": {"baseline": "a"}}))
    # 20 s fixed, 120 s in all: 120 - 20 - 120 cell-seconds < 0 -> no per-cell rest
    (tmp_path / "run.json").write_text(json.dumps({"fixed_overhead_seconds": 20.0, "total_seconds": 120.0}))
    results = pd.read_csv(tmp_path / "results.csv")
    # 10 folds x 2 repeats: 20 cells per arm, each (9/10)/(4/5) = 1.125 x a 5-fold cell (12 s mean, 10-14 s)
    projected, low, high = design_seconds(results, {"fixed_overhead_seconds": 20.0}, 5, 10, 2)  # type: ignore[misc]
    assert (projected, low, high) == pytest.approx((20 + 2 * 20 * 1.125 * 12, 20 + 2 * 20 * 1.125 * 10,
                                                     20 + 2 * 20 * 1.125 * 14))
    rest = design_seconds(results, {"fixed_overhead_seconds": 20.0, "total_seconds": 160.0}, 5, 5, 1)
    assert rest is not None and rest[0] == pytest.approx(20 + 120 + 20)  # 20 s beyond the cells: 2 s per cell
    assert design_seconds(results.drop(columns="seconds"), {}, 5, 5, 1) is None
    assert main(["plan", str(tmp_path), "--effect", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "from this run's cell times" in out and "about" in out


def test_helpers() -> None:
    assert [steps_per_epoch(n, 8) for n in (8, 9, 10, 16, 17)] == [1, 1, 2, 2, 2]  # never a last batch of one
    assert [duration(s) for s in (41, 720, 13320)] == ["41 s", "12 min", "3.7 h"]


def test_plan_takes_a_shipped_studys_bare_name(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``harness plan quickstart`` plans the shipped study (as ``harness run quickstart`` runs it); a typo is one
    message with the close name, exit 2."""
    from harness.cli import tools

    planned: list[Path] = []
    monkeypatch.setattr(tools, "cmd_plan_study", lambda command: planned.append(command.study) or 0)
    assert main(["plan", "quickstart"]) == 0
    assert planned and planned[0].name == "quickstart.yaml" and planned[0].is_file()
    assert main(["plan", "quickstar"]) == 2
    assert "did you mean 'quickstart'?" in capsys.readouterr().err
