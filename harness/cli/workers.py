"""Local worker processes for ``run --workers N`` and ``tune --workers N``: started on one storage, returned
to the caller, stopped with the command when it fails or is interrupted, and their exit codes checked when it ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.run.determinism import worker_env

if TYPE_CHECKING:
    from harness.pipeline.plan import Plan


def spawn_workers(command: str, plan: Plan, out: Path, storage: str, count: int,
                  *extra: str) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` quiet worker processes of ``harness COMMAND`` on one storage (this process is one more),
    each with the plan's study and overrides."""
    line = [*worker_python(), "-m", "harness.cli", command, str(plan.source), "--out", str(out), "--storage", storage,
            "--quiet", *extra, *[a for o in plan.overrides for a in ("--set", o)],
            *(["--strict-plugins"] if plan.strict_plugins else [])]
    # this process's import path (workers start with -P: the working directory is never on it); on several GPUs,
    # one GPU each (round robin)
    path = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    envs = [worker_env(index, {**os.environ, **path}) for index in range(1, count + 1)]
    # a process group of their own: a terminal's Ctrl-C reaches this process only, which passes it on once
    # (stop_with_command); two SIGINTs would stop a worker at once, without its checkpoint
    return [subprocess.Popen(line, stdout=subprocess.DEVNULL, env=env, process_group=0) for env in envs]


@contextlib.contextmanager
def stop_with_command(workers: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Run the block; when it fails or is interrupted (Ctrl-C), every worker still running gets one SIGINT (it
    saves a checkpoint and stops, as on Ctrl-C) and is waited for, so none outlives the command; Ctrl-C while
    waiting kills them."""
    try:
        yield
    except BaseException:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGINT)
        try:
            for worker in workers:
                worker.wait()
        except KeyboardInterrupt:
            for worker in workers:
                worker.kill()
                worker.wait()
        raise


def worker_python() -> list[str]:
    """How a worker process starts Python: ``-P`` keeps the working directory off its path, and PYTHONPATH
    (set by the caller) is this process's path, so a worker imports exactly the modules this process would."""
    return [sys.executable, "-P"]


def check_workers(workers: list[subprocess.Popen[bytes]], out: Path) -> None:
    """Wait for the extra workers; one that failed (non-zero exit, or killed) is an error, not a clean summary."""
    codes = [worker.wait() for worker in workers]
    failed = [(worker.pid, code) for worker, code in zip(workers, codes, strict=True) if code != 0]
    if failed:
        what = ", ".join(f"pid {pid} exit code {code}" for pid, code in failed)
        raise HarnessError(f"{len(failed)} of {len(workers)} extra worker process(es) failed ({what}); the run in {out} "
                           "may be missing their cells: run the same command again (it resumes), or without --workers "
                           "to see the error")
