"""The kill-test hook: inert unless HARNESS_KILL_AT names the moment, then kills at the N-th time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from harness.run import faults


def test_kill_point_does_nothing_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_KILL_AT", raising=False)
    faults.kill_point("evaluated")
    monkeypatch.setenv("HARNESS_KILL_AT", "best-saved@2")
    faults.reset()
    faults.kill_point("evaluated")  # another moment
    faults.kill_point("best-saved")  # the first time of two
    assert faults._reached == {"best-saved": 1}
    faults.reset()


def test_kill_point_kills_the_process_at_the_nth_time() -> None:
    code = ("from harness.run import faults\nfor i in range(3):\n    print(i, flush=True)\n"
            "    faults.kill_point('evaluated')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HARNESS_KILL_AT": "evaluated@2"})
    assert done.returncode == -signal.SIGKILL and done.stdout.split() == ["0", "1"]
