"""Test-only fault injection for the kill tests (tests/reliability/test_resume.py).

``HARNESS_KILL_AT=MOMENT`` or ``MOMENT@N`` makes the process SIGKILL itself the N-th time (default: the
first) it reaches the named moment. Unset, which is always the case outside those tests, a moment costs
one environment lookup. The moments lie in the windows between a fold's last checkpoint and its cell
being marked done:

- ``best-saved``: an epoch's best weights are written, its ``last.pt`` is not yet
- ``terminal-saved``: a fold's last checkpoint, holding its terminal state (stopped/diverged/finished), is written
- ``evaluated``: the fold's final evaluation is done, nothing of the cell's result is written yet
- ``cell-files-written``: history.csv and predictions.csv are written, result.json is not
- ``result-written``: result.json is written, the run's results.csv is not yet updated
"""

from __future__ import annotations

import os
import signal

MOMENTS = ("best-saved", "terminal-saved", "evaluated", "cell-files-written", "result-written")
_reached: dict[str, int] = {}


def kill_point(moment: str) -> None:
    """SIGKILL this process here if ``HARNESS_KILL_AT`` names ``moment`` (and this is its N-th time)."""
    wanted = os.environ.get("HARNESS_KILL_AT")
    if not wanted:
        return
    name, _, count = wanted.partition("@")
    if name != moment:
        return
    _reached[moment] = _reached.get(moment, 0) + 1
    if _reached[moment] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def reset() -> None:
    """Forget how often each moment was reached (a forked test child starts counting afresh)."""
    _reached.clear()
