"""CPU threads per process: a default that does not oversubscribe, and the ``--threads`` flag."""

from __future__ import annotations

import os

from harness.errors import HarnessError

THREADS_HELP = ("torch CPU threads per process (sets training.threads; default: the cores available to this "
                "process divided by the local workers, so processes do not oversubscribe)")


def default_threads(workers: int = 1) -> int:
    """Torch CPU threads that do not oversubscribe: the cores this process may use / local workers."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def checked_threads(threads: int | None) -> int | None:
    """``--threads``, refused below 1."""
    if threads is not None and threads < 1:
        raise HarnessError(f"--threads must be at least 1, got {threads}")
    return threads


def load_warning(threads: int, workers: int = 1, load: float | None = None) -> str:
    """One line when the machine is already busier than the cores this run will use ('' otherwise):
    the load average of the last minute above threads x workers, and what ``--threads`` would do."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # not available on this system
            return ""
    used = threads * max(1, workers)
    if load <= used:
        return ""
    advice = (f"--threads 1 runs one torch thread per process, which on a busy machine is often faster than "
              f"{threads} threads waiting for cores (--threads N sets the count)" if threads > 1 else
              "it already runs one thread per process; fewer --workers, or a quieter time, would help")
    return (f"the machine is busy: load average {load:.1f} over the last minute exceeds the {used} core(s) this run "
            f"will use ({workers} process(es) x {threads} thread(s)), so its threads will wait for CPU time; {advice}")
