"""Local worker processes: a worker that fails makes the command say so and exit non-zero."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
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


def _processes_naming(text: str) -> list[str]:
    """The command lines of the live processes that contain ``text`` (from /proc)."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        if text in line:
            lines.append(line)
    return lines


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="lists processes through /proc")
def test_an_interrupted_run_stops_its_workers(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Old code: SIGINT to `harness run --workers 2` (a scheduler's, or `kill -INT`) exited 130 at once and left the
    extra worker training on in the run directory, orphaned; now the worker is passed the interrupt (it saves a
    checkpoint and stops) and waited for."""
    study = write_study({"training": {"epochs": 300}}, arms={"plain": {"backbone": "resnet20"}})
    out = tmp_path / "run"
    command = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(study), "--out", str(out),
                                "--workers", "2", "--quiet", "--no-report"], stderr=(tmp_path / "stderr").open("w"))
    deadline = time.monotonic() + 120
    while (not (out / "run.log").exists() or (out / "run.log").read_text().count("study tiny:") < 2):  # both train
        assert command.poll() is None and time.monotonic() < deadline, "the run ended or never started its worker"
        time.sleep(0.2)
    command.send_signal(signal.SIGINT)
    assert command.wait(timeout=120) == 130
    assert _processes_naming(str(out)) == []
    said = (tmp_path / "stderr").read_text()  # the interrupt said in one line, without optuna's traceback
    assert "stopped: interrupted during plain" in said and "Traceback" not in said
