"""Local worker processes: a worker that fails makes the command say so and exit non-zero."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.cli import workers
from harness.cli.main import main


def test_a_failed_worker_fails_the_run(write_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The extra worker exits with 3 at once (a real process); this process does every cell, then reports the
    worker's failure instead of a clean summary (exit 2)."""
    monkeypatch.setattr(workers, "worker_python", lambda: [sys.executable, "-P", "-c", "raise SystemExit(3)"])
    study = write_study({"training": {"epochs": 1}}, arms={"plain": {"backbone": "resnet20"}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--workers", "2", "--no-report"]) == 2
    captured = capsys.readouterr()
    assert "1 of 1 extra worker process(es) failed" in captured.err and "exit code 3" in captured.err
    assert "results:" not in captured.out
    assert main(["run", str(study), "--out", str(out), "--no-report", "--quiet"]) == 0  # a rerun completes cleanly
