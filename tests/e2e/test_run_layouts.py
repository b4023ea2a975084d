"""A run directory holds one layout: a single run, or a run of several settings; a study of the other layout is
refused without --fresh (the old outputs would sit beside the new ones) and replaces it with --fresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main

TINY = {"dataset": {"name": "phantom", "image_size": 16, "options": {"classes": 2, "per_class": 6, "size": 16,
                                                                     "patients": 4}},
        "training": {"epochs": 1}}


def test_single_and_settings_runs_never_share_a_run_directory(write_study, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    single = write_study(TINY, name="single.yaml")
    settings = write_study({**TINY, "settings": [{"id": "fast", "training": {"optimizer": {"lr": 0.1}}},
                                                 {"id": "slow", "training": {"optimizer": {"lr": 0.01}}}]},
                           name="settings.yaml")
    out = tmp_path / "run"
    assert main(["run", str(single), "--out", str(out), "--quiet", "--no-report"]) == 0
    results = (out / "results.csv").read_bytes()

    assert main(["run", str(settings), "--out", str(out), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "holds a single run (cells, results.csv)" in err and "--fresh" in err, err
    assert (out / "results.csv").read_bytes() == results and not (out / "settings").exists()  # nothing touched

    assert main(["run", str(settings), "--out", str(out), "--quiet", "--no-report", "--fresh"]) == 0
    assert not (out / "results.csv").exists() and not (out / "cells").exists()  # the single run's outputs are gone
    assert (out / "settings" / "fast" / "results.csv").exists()

    capsys.readouterr()
    assert main(["run", str(single), "--out", str(out), "--quiet", "--no-report"]) == 2
    assert "holds a run of several settings (settings)" in capsys.readouterr().err
    assert not (out / "results.csv").exists()
