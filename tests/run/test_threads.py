"""``harness run`` on a machine busier than the cores it will use says so once, with what --threads would do."""

from __future__ import annotations

import json
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


def test_default_threads_follow_the_cores_this_process_may_use() -> None:
    """Pinned to one core, the default is 1 thread (not os.cpu_count()); split between local workers."""
    import subprocess
    import sys

    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from harness.run.threads import default_threads; print(default_threads(), default_threads(4))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "1"]
    import os

    from harness.run.threads import default_threads
    assert default_threads(1) == len(os.sched_getaffinity(0))
    assert default_threads(len(os.sched_getaffinity(0)) * 2) == 1


def test_threads_flag_on_run_is_used_and_recorded(tmp_path: Path, write_study) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"threads": None, "epochs": 1}}, arms={"plain": {"backbone": "resnet20"}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report", "--threads", "1"]) == 0
    assert json.loads((out / "run.json").read_text())["threads"] == 1
    assert main(["bench", "--threads", "0"]) == 2


def test_tune_workers_split_the_threads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, write_study) -> None:  # type: ignore[no-untyped-def]
    """`tune --workers N` gives each worker process (and this one) cores / N threads unless the study sets them."""
    from harness.cli import main as cli
    from harness.errors import HarnessError
    from harness.run.threads import default_threads

    spawned: list[tuple[tuple[str, ...], int | None]] = []

    def spawn(command: str, plan, *rest):  # type: ignore[no-untyped-def]
        spawned.append((plan.overrides, plan.first.spec.training.threads))
        raise HarnessError("stop before tuning")

    monkeypatch.setattr(cli, "spawn_workers", spawn)
    for threads, out in ((None, "a"), (3, "b")):
        study = write_study({"training": {"threads": threads, "epochs": 1}}, arms={"plain": {"backbone": "resnet20"}})
        assert main(["tune", str(study), "--out", str(tmp_path / out), "--workers", "2", "--trials", "1"]) == 2
    assert spawned == [((f"training.threads={default_threads(2)}",), default_threads(2)),
                       ((), 3)]  # the study's own training.threads wins
