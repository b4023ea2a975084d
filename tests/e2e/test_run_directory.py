"""The run directory after a finished study: the scored weights per cell and little else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.slow
def test_finished_resnet18_run_keeps_scored_weights_only(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"epochs": 1}, "dataset": {"image_size": 16, "options": {"size": 16}}},
                        arms={"plain": {"backbone": "resnet18", "attention": "none"},
                              "se": {"backbone": "resnet18", "attention": {"name": "se", "reduction": 16}}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    cells = sorted(out.glob("cells/*/*"))
    assert len(cells) == 4
    assert all(sorted(p.name for p in c.glob("*.pt")) == ["best.pt"] for c in cells), "last.pt must go"
    arms = json.loads((out / "arms.json").read_text())
    weights = sum(4 * arms[c.parent.name]["params"] for c in cells)  # fp32 bytes of every cell's model
    assert _size(out) <= 1.3 * weights + 20 * 1024**2


def test_checkpoints_none_keeps_no_weights_and_all_keeps_resume_state(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arms = {"plain": {"backbone": "resnet20", "attention": "none"}}
    tiny = {"training": {"epochs": 1}, "dataset": {"image_size": 16, "options": {"size": 16}}}
    for policy, expected in (("none", []), ("all", ["best.pt", "last.pt"])):
        study = write_study({**tiny, "training": {"epochs": 1, "checkpoints": policy}}, arms=arms, name=f"{policy}.yaml")
        out = tmp_path / policy
        assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
        cells = sorted(out.glob("cells/*/*"))
        assert len(cells) == 2  # one arm x 2 folds: the loop below checks something
        for cell in cells:
            assert sorted(p.name for p in cell.glob("*.pt")) == expected
