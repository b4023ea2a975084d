"""``harness run --storage URL``: many workers (processes or machines) share one study's cells.

Every arm x repeat x fold cell is an Optuna trial with fixed parameters, enqueued once (by the
worker that creates the coordinating Optuna study; creation is atomic in the database). A worker
claims a cell by popping a waiting trial, runs it in the shared run directory, and completes the
trial. A killed worker stops sending heartbeats; its RUNNING trial is failed by the survivors and
re-enqueued, and the cell resumes from its last checkpoint. No home-made queue.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import pandas as pd

from harness.errors import HarnessError, Interrupted
from harness.logs import log
from harness.registry import Registry
from harness.run.runner import RunOptions, StudyRunner, run_lock
from harness.run.storage import storage_for
from harness.study.loader import LoadedStudy

POLL_SECONDS = 1.0
READY_TIMEOUT = 300.0
MAX_ATTEMPTS = 3  # a cell that fails this often (not by a dead worker) is reported, not retried forever


def _cell_key(params: dict[str, Any]) -> tuple[str, int, int]:
    return str(params["arm"]), int(params["repeat"]), int(params["fold"])


def run_with_storage(study: LoadedStudy, registry: Registry, options: RunOptions, storage_url: str) -> pd.DataFrame:
    """Work through the study's cells with the other workers; the worker that sees them all done writes the outputs."""
    import optuna

    if study.spec.cv.stop_when_settled:
        raise HarnessError("cv.stop_when_settled runs the repeats one at a time and looks after each; workers sharing "
                           "a storage (--workers / --storage) run cells in any order: drop one of them")
    # the runner logs a failed cell itself; optuna's warning would repeat it, and print a traceback on Ctrl-C
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from harness.logs import run_log
    from harness.rundir import RunDir

    with run_lock(options.out_dir, shared=True), run_log(RunDir(options.out_dir).log_path):  # shared with the other workers
        return _work(study, registry, options, storage_url)


def _work(study: LoadedStudy, registry: Registry, options: RunOptions, storage_url: str) -> pd.DataFrame:
    import optuna
    from optuna.storages import fail_stale_trials

    storage = storage_for(storage_url, options.out_dir)
    runner = StudyRunner(study, registry, options)
    data, costs = runner.setup()
    from harness.run.runner import cell_fingerprint
    from harness.seeds import seed_for

    # one coordinating study per study configuration: changed settings never reuse stale cells
    name = f"run:{study.name}:{seed_for(*(cell_fingerprint(study, arm, runner.data_key) for arm in runner.arms)) % 10**8:08d}"
    cells = {(arm.name, fold.repeat, fold.fold): (arm, fold) for arm in runner.arms for fold in data.splits.folds}
    try:
        coordinator = optuna.create_study(storage=storage, study_name=name, direction="maximize")
        for arm_name, repeat, fold in cells:
            cell = {"arm": arm_name, "repeat": repeat, "fold": fold}
            coordinator.enqueue_trial(cell, user_attrs={"cell": cell})
        coordinator.set_user_attr("cells", len(cells))  # marks the queue complete
    except optuna.exceptions.DuplicatedStudyError:
        coordinator = optuna.load_study(study_name=name, storage=storage)
        deadline = time.monotonic() + READY_TIMEOUT
        while "cells" not in coordinator.user_attrs:
            if time.monotonic() > deadline:
                raise HarnessError(f"storage {storage_url}: the worker that created {name!r} never finished enqueuing") from None
            time.sleep(POLL_SECONDS)
    if coordinator.user_attrs["cells"] != len(cells):
        raise HarnessError(f"storage {storage_url} holds a run of {name!r} with {coordinator.user_attrs['cells']} cells; "
                           f"this study has {len(cells)}: use another --storage or study name")

    interrupted: list[Interrupted] = []

    def objective(trial: Any) -> float:
        if "cell" not in trial.user_attrs:  # nothing was waiting: no cell to claim
            trial.set_user_attr("idle", True)
            raise optuna.TrialPruned("no waiting cell")
        params = trial.user_attrs["cell"]
        key = _cell_key(params)
        # records the claimed cell as the trial's params (the enqueued values are fixed)
        trial.suggest_categorical("arm", sorted({k[0] for k in cells}))
        trial.suggest_categorical("repeat", sorted({k[1] for k in cells}))
        trial.suggest_categorical("fold", sorted({k[2] for k in cells}))
        others = _cells_in(coordinator, ("COMPLETE", "RUNNING"), exclude=trial.number)
        if key in others:
            trial.set_user_attr("duplicate", True)
            raise optuna.TrialPruned(f"cell {key} is already done or taken")
        arm, fold = cells[key]
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        try:
            result = runner.run_cell(arm, fold, data, costs)
        except Interrupted as exc:  # Ctrl-C: checkpoint written; stop this worker, the cell stays claimable
            interrupted.append(exc)
            raise KeyboardInterrupt from None
        if result is None:
            raise HarnessError(f"cell {key} failed: {runner.failures[-1]}")
        trial.set_user_attr("result", {k: v for k, v in result.items() if isinstance(v, int | float | str)})
        return float(result["accuracy"])

    with runner.interruptible():
        while True:
            done = _cells_in(coordinator, ("COMPLETE",))
            if len(done) == len(cells):
                break
            states = {t.state.name for t in coordinator.get_trials(deepcopy=False)}
            if "WAITING" in states:
                try:
                    coordinator.optimize(objective, n_trials=1, catch=(HarnessError,))
                except KeyboardInterrupt:
                    if interrupted:
                        raise interrupted[0] from None
                    raise
                except ValueError as exc:  # optuna's tell: another worker changed the trial's state meanwhile
                    if "Cannot tell a" not in str(exc):
                        raise
                    # this worker's heartbeat came late (a loaded machine) and its trial was failed as stale and
                    # retried elsewhere; the cell's files are written atomically, so its result is not lost
                    log.warning(f"a cell's trial was taken over by another worker while this one ran ({exc}); "
                                "its result files stand and the queue goes on")
                continue
            fail_stale_trials(coordinator)  # a dead worker's cell goes back to the queue (heartbeat)
            if not _requeue(coordinator, cells, done):
                break  # nothing running, nothing left to retry: the rest failed too often
            time.sleep(POLL_SECONDS)
    missing = sorted(set(cells) - _cells_in(coordinator, ("COMPLETE",)))
    runner.failures += [f"cell {key} failed {MAX_ATTEMPTS} times; see the trials in the storage" for key in missing]
    return runner.finish(data, costs)


def _cells_in(study: Any, states: tuple[str, ...], exclude: int | None = None) -> set[tuple[str, int, int]]:
    return {_cell_key(t.params) for t in study.get_trials(deepcopy=False)
            if t.state.name in states and t.number != exclude and {"arm", "repeat", "fold"} <= set(t.params)}


def _requeue(study: Any, cells: dict[tuple[str, int, int], Any], done: set[tuple[str, int, int]]) -> bool:
    """Enqueue cells whose trials failed (up to MAX_ATTEMPTS); False when nothing is running or retryable."""
    from collections import Counter

    trials = study.get_trials(deepcopy=False)
    if any(t.state.name == "WAITING" for t in trials):
        return True
    running = _cells_in(study, ("RUNNING",))
    failures = Counter(_cell_key(t.params) for t in trials if t.state.name == "FAIL" and {"arm", "repeat", "fold"} <= set(t.params))
    retry = [k for k in cells if k not in done and k not in running and failures[k] < MAX_ATTEMPTS]
    for arm, repeat, fold in retry:
        cell = {"arm": arm, "repeat": repeat, "fold": fold}
        study.enqueue_trial(cell, user_attrs={"cell": cell})
    return bool(running or retry)
