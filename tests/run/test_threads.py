"""``harness run`` on a machine busier than the cores it will use says so once, with what --threads would do."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.run.threads import load_warning


def test_the_warning_compares_the_load_with_the_cores_the_run_uses() -> None:
    assert load_warning(2, 1, load=1.9) == ""
    assert load_warning(2, 2, load=3.5) == ""  # 2 workers x 2 threads: 4 cores in use
    busy = load_warning(2, 1, load=14.0)
    assert "load average 14.0" in busy and "the 2 core(s)" in busy and "--threads 1" in busy
    assert "fewer --workers" in load_warning(1, 3, load=7.0)  # already one thread: the advice is another


def test_harness_run_warns_on_a_busy_machine(write_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                             capsys: pytest.CaptureFixture[str]) -> None:
    study = write_study({"training": {"epochs": 1, "threads": 2}}, arms={"plain": {"backbone": "resnet20"}})
    monkeypatch.setattr(os, "getloadavg", lambda: (40.0, 40.0, 40.0))
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert err.count("the machine is busy: load average 40.0") == 1 and "--threads 1" in err
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--no-report"]) == 0
    assert "machine is busy" not in capsys.readouterr().err
