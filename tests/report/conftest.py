"""Fixtures of the report tests: one finished quickstart run, shared by test_render.py and test_side_by_side.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main


@pytest.fixture(scope="session")  # once per xdist worker, even when other modules' tests run between
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quickstart study, shrunk to seconds: ResNet-18 with and without SE on phantom data,
    folds grouped by the phantom's patients (so the report has per-group scores)."""
    out = tmp_path_factory.mktemp("quickstart")
    study = Path(__file__).parents[2] / "studies" / "quickstart.yaml"
    shrink = ["training.epochs=2", "dataset.options.per_class=12", "training.threads=2", "cv.group=patient",
              "dataset.image_size=64", "dataset.options.size=64"]  # 64 px: the Grad-CAM layer choice below
    assert main(["run", str(study), "--out", str(out), "--quiet", *[a for s in shrink for a in ("--set", s)]]) == 0
    return out
