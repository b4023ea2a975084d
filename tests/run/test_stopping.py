"""cv.stop_when_settled on tiny real runs (ResNet-20, 32 px phantom, 4 folds): an arm that cannot learn
stops the run early; arms that differ only by chance never come out better or worse."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.cli.main import main
from harness.data.splits import Fold
from harness.errors import HarnessError
from harness.run.stopping import SettledStop, settled_stop
from harness.study.loader import load_study

LEARNS: dict[str, Any] = {  # a recipe that reaches ~0.9 accuracy at this size (difficulty 0)
    "dataset": {"options": {"per_class": 24, "patients": 8, "difficulty": 0.0}},
    "training": {"epochs": 5},
    "init": "standard",
}


def _run_dir(root: Path, repeats: int, folds: int) -> Path:
    """Two repeats of three arms: 'dead' has no finite score on any fold (every fold diverged)."""
    rng = np.random.default_rng(0)
    rows = [{"arm": arm, "repeat": r, "fold": f, "status": "ok", "n_train": 90, "n_val": 30,
             "accuracy": np.nan if arm == "dead" else 0.7 + (0.3 if arm == "good" else 0.0) + rng.normal(0, 0.01)}
            for arm in ("base", "good", "dead") for r in range(repeats) for f in range(folds)]
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    (root / "study.yaml").write_text(yaml.safe_dump({"name": "edge", "seed": 0, "compare": {"baseline": "base"}}))
    return root


def test_an_arm_without_finite_scores_ends_inconclusive_not_continue(tmp_path: Path) -> None:
    """It used to stay 'continue' in the final record ('ran all 2 repeats: ... dead continue')."""
    run = _run_dir(tmp_path, repeats=2, folds=4)
    spec = SimpleNamespace(cv=SimpleNamespace(repeats=2, folds=4, stop_when_settled=True),
                           compare=SimpleNamespace(metric="accuracy", baseline="base", alpha=0.05, rope=0.01))
    stop = SettledStop(run, spec, ["base", "good", "dead"])
    said: list[str] = []
    assert stop.look(0, 0, lambda: None, said.append) is False
    assert stop.record["decisions"]["dead"] == "continue"
    assert stop.look(1, 0, lambda: None, said.append) is True
    record = json.loads((run / "stopping.json").read_text())
    assert record["status"] == "exhausted" and record["decisions"]["dead"] == "inconclusive"
    assert "dead continue" not in said[-1]


def test_two_arms_that_never_learned_do_not_settle_equivalent(tmp_path: Path) -> None:
    """Both stuck at the majority rate on every fold: equal scores, yet two failures, never 'equivalent'."""
    from harness.stats.flags import NEVER_LEARNED

    rows = [{"arm": arm, "repeat": r, "fold": f, "status": "ok", "n_train": 90, "n_val": 30, "accuracy": 0.6,
             "training_flag": f"{NEVER_LEARNED} (60.0 %; best 60.0 %)"}
            for arm in ("base", "twin") for r in range(2) for f in range(6)]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    (tmp_path / "study.yaml").write_text(yaml.safe_dump({"name": "edge", "seed": 0, "compare": {"baseline": "base"}}))
    spec = SimpleNamespace(cv=SimpleNamespace(repeats=2, folds=6, stop_when_settled=True),
                           compare=SimpleNamespace(metric="accuracy", baseline="base", alpha=0.05, rope=0.01))
    stop = SettledStop(tmp_path, spec, ["base", "twin"])
    said: list[str] = []
    assert stop.look(0, 0, lambda: None, said.append) is False and stop.record["decisions"]["twin"] == "continue"
    assert stop.look(1, 0, lambda: None, said.append) is True
    assert stop.record["decisions"]["twin"] == "inconclusive" and "two failures" in said[0] + said[-1]


def _study(write_study, cv: dict[str, Any], arms: dict[str, Any]) -> Path:  # type: ignore[no-untyped-def]
    path = write_study({**LEARNS, "cv": {"folds": 4, "stop_when_settled": True, **cv}}, arms=arms)
    study = yaml.safe_load(path.read_text())
    study["training"].pop("scheduler")  # the fixture's sgd + step decay learns too little at this size
    study["training"]["optimizer"] = {"name": "adam", "lr": 0.003}
    path.write_text(yaml.safe_dump(study))
    return path


def _cells(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (out / "cells").rglob("result.json")}


@pytest.mark.slow
def test_an_arm_that_cannot_learn_stops_the_run_early(write_study, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    study = _study(write_study, {"repeats": 4}, {"plain": {"backbone": "resnet20", "attention": "none"},
                                                 "frozen": {"backbone": "resnet20", "attention": "none",
                                                            "training": {"optimizer": {"lr": 1.0e-6}}}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet"]) == 0
    record = json.loads((out / "stopping.json").read_text())
    assert record["status"] == "settled" and record["decisions"] == {"frozen": "worse"}
    assert record["repeats_run"] < 4 and record["max_repeats"] == 4
    assert record["looks"][-1]["arms"]["frozen"]["decision"] == "worse"
    assert pd.read_csv(out / "results.csv")["repeat"].max() == record["repeats_run"] - 1  # no repeat beyond the stop
    assert json.loads((out / "run.json").read_text())["stopping"]["status"] == "settled"
    assert json.loads((out / "stats.json").read_text())["stopping"]["repeats_run"] == record["repeats_run"]
    said = f"stopped after {record['repeats_run']} of 4 repeats: every arm settled (frozen worse"
    assert said in capsys.readouterr().out
    assert said in (out / "report.html").read_text()
    assert main(["compare", str(out)]) == 0
    assert said in capsys.readouterr().out

    before = _cells(out)  # a rerun of the stopped study trains nothing and stops at the same look
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    assert _cells(out) == before and json.loads((out / "stopping.json").read_text()) == record
    last = max(before, key=lambda p: p.parent.name)  # killed mid-repeat: one cell of the last repeat lost
    last.unlink()
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    assert last.exists() and len(_cells(out)) == len(before)
    assert json.loads((out / "stopping.json").read_text())["repeats_run"] == record["repeats_run"]

    changed = yaml.safe_load(study.read_text())  # a new budget after looking is refused
    changed["cv"]["repeats"] = 8
    study.write_text(yaml.safe_dump(changed))
    capsys.readouterr()
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 2
    assert "max_repeats 4 -> 8" in capsys.readouterr().err


@pytest.mark.slow
def test_arms_that_differ_by_chance_are_never_better(write_study, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    plain = {"backbone": "resnet20", "attention": "none"}
    study = _study(write_study, {"repeats": 2}, {
        "plain": plain,
        "twin": plain,  # identical (same seeds: the harness has no per-arm seed), so identical scores
        "nudged": {**plain, "training": {"optimizer": {"lr": 0.00301}}},  # another trajectory, no real effect
    })
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    record = json.loads((out / "stopping.json").read_text())
    assert record["decisions"]["twin"] == "equivalent"
    assert record["decisions"]["nudged"] in ("equivalent", "inconclusive")
    assert record["status"] == "settled" or record["repeats_run"] == 2
    results = pd.read_csv(out / "results.csv").pivot_table(index=["repeat", "fold"], columns="arm", values="accuracy")
    assert (results["nudged"] != results["plain"]).any()  # the nudge really changed the training


def test_the_rule_applies_to_plain_runs_with_two_arms_or_more(write_study, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    spec = load_study(write_study({"cv": {"repeats": 3, "stop_when_settled": True}})).spec
    assert isinstance(settled_stop(tmp_path, spec, ["plain", "se"], None), SettledStop)
    assert settled_stop(tmp_path, spec, ["plain", "se"], [0, 1]) is None  # a tuning trial orders its folds
    assert settled_stop(tmp_path, spec, ["plain"], None) is None
    assert "no verdict to settle; every one of the 3 repeats runs" in caplog.text
    folds = [Fold(r, f, np.array([]), np.array([])) for r in range(3) for f in range(2)]
    cells = [(arm, fold) for arm in ("plain", "se") for fold in folds]
    batches = SettledStop.batches(cells)
    assert [[(a, f.repeat, f.fold) for a, f in b] for b in batches][0] == [
        ("plain", 0, 0), ("plain", 0, 1), ("se", 0, 0), ("se", 0, 1)]
    assert [len(b) for b in batches] == [4, 4, 4]


def test_a_record_of_another_rule_version_is_refused(write_study, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from harness.stats import sequential

    spec = load_study(write_study({"cv": {"repeats": 3, "stop_when_settled": True}})).spec
    rule = SettledStop(tmp_path, spec, ["plain", "se"])
    rule._save()
    assert json.loads((tmp_path / "stopping.json").read_text())["rule_version"] == sequential.RULE_VERSION
    SettledStop(tmp_path, spec, ["plain", "se"])  # the same rule continues its own record
    record = json.loads((tmp_path / "stopping.json").read_text())
    del record["rule_version"]  # a record written before the version was kept: rule 1
    (tmp_path / "stopping.json").write_text(json.dumps(record))
    SettledStop(tmp_path, spec, ["plain", "se"])
    monkeypatch.setattr(sequential, "RULE_VERSION", 2)
    with pytest.raises(HarnessError, match="rule_version 1 -> 2"):
        SettledStop(tmp_path, spec, ["plain", "se"])
