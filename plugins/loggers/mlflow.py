"""The ``mlflow`` logger: MLflow runs nested study -> arm -> cell.

The study run holds the study's settings as params and, once the run ends, ``report.html``,
``results.csv`` and ``study.yaml`` as artifacts; each arm run its resolved settings as params and
the mean (and ``<metric>_sd``) of its cells' final metrics; each cell run the arm's settings plus
repeat and fold, every history.csv column per epoch (step = epoch) and its final metrics.

By default runs go to a SQLite store in the logger's folder ``RUN/plugins/mlflow`` (``mlflow ui
--backend-store-uri sqlite:///RUN/plugins/mlflow/mlflow.db``), which ``--fresh`` keeps; ``tracking_uri``
sends them anywhere MLflow can (a server's ``http://host:5000``). A rerun that resumes the run
directory continues the same runs (the study run's id is kept in ``RUN/plugins/mlflow/study_run.json``). Needs ``pip install 'ablation-harness[mlflow]'``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness_plugins.loggers.tracking import flatten
from pydantic import BaseModel, ConfigDict, Field

from harness.api import (
    EpochContext,
    FoldContext,
    LoggerInfo,
    StudyContext,
    StudyStartContext,
    atomic_write_text,
    cell_name,
    hookimpl,
)

LEVEL, KEY, PARENT = "harness.level", "harness.key", "harness.parent"  # tags that find a run again on resume


STUDY_RUN = "study_run.json"  # the study run's id, so a resumed run continues it
LOCK = ".lock"  # held while the runs are found or created (local workers share them)

class MlflowOptions(BaseModel):
    """Where the mlflow logger sends its runs."""

    model_config = ConfigDict(extra="forbid")
    tracking_uri: str | None = Field(None, description="an MLflow tracking URI (http://host:5000, sqlite:///x.db, "
                                     "...); default: a SQLite store in RUN/plugins/mlflow")
    experiment: str | None = Field(None, description="the experiment's name (default: the study's name)")
    artifact_location: str | None = Field(None, description="where a new experiment keeps artifacts (default: "
                                          "RUN/plugins/mlflow/artifacts for a local store, the server's choice for http)")


class MlflowLogger:
    """Creates and fills the runs of one study run; started for that run only by the core."""

    def __init__(self, options: MlflowOptions, folder: Path) -> None:
        self.options = options
        self.folder = folder  # RUN/plugins/mlflow: the default store, the study run's id, the lock
        self.artifacts: tuple[Path, ...] = ()
        self.client: Any = None
        self.experiment = ""
        self.run_dir = Path()
        self.study_run = ""
        self.arm_runs: dict[str, str] = {}
        self.arm_params: dict[str, dict[str, Any]] = {}
        self.cell_runs: dict[tuple[str, int, int], str] = {}
        self.final_keys: list[str] = []

    # -- finding or creating runs ------------------------------------------------------------------

    def _store(self) -> tuple[str, str | None]:
        """The tracking URI and, for a local store, the artifact location of a new experiment."""
        local = self.folder.resolve()
        uri = self.options.tracking_uri
        if uri is None:
            uri = f"sqlite:///{local / 'mlflow.db'}"
        artifacts = self.options.artifact_location
        if artifacts is None and not uri.startswith(("http://", "https://", "databricks")):
            artifacts = (local / "artifacts").as_uri()
        return uri, artifacts

    def _run(self, experiment: str, level: str, key: str, name: str, parent: str,
             params: Mapping[str, Any], *, fresh: bool = False) -> str:
        """The id of the ``level`` run called ``key`` under ``parent``; created (with ``params``) if missing,
        or replaced when ``fresh`` (its cell trains again from the first epoch)."""
        if parent:
            found = self.client.search_runs(
                [experiment], f"tags.`{LEVEL}` = '{level}' and tags.`{KEY}` = '{_quote(key)}' and "
                f"tags.`{PARENT}` = '{parent}'", max_results=1)
            if found and not fresh:
                return str(found[0].info.run_id)
            for run in found:
                self.client.delete_run(run.info.run_id)
        tags = {LEVEL: level, KEY: key, **({PARENT: parent, "mlflow.parentRunId": parent} if parent else {})}
        run = self.client.create_run(experiment, run_name=name, tags=tags)
        _log_params(self.client, run.info.run_id, params)
        return str(run.info.run_id)

    def _cell(self, arm: str, repeat: int, fold: int, *, fresh: bool) -> str:
        key = (arm, repeat, fold)
        if key not in self.cell_runs or fresh:
            params = {**self.arm_params.get(arm, {}), "arm": arm, "repeat": repeat, "fold": fold}
            name = f"{arm}/{cell_name(repeat, fold)}"
            self.cell_runs[key] = self._run(self.experiment, "cell", name, name, self.arm_runs[arm], params,
                                            fresh=fresh)
        return self.cell_runs[key]

    # -- hooks ---------------------------------------------------------------------------------

    @hookimpl
    def study_started(self, context: StudyStartContext) -> None:
        from mlflow import MlflowClient

        self.run_dir = context.run_dir
        uri, artifacts = self._store()
        self.client = MlflowClient(tracking_uri=uri)
        with _exclusive(self.folder / LOCK):  # local workers (run --workers N) share the runs
            self._open_runs(context, uri, artifacts)

    def _open_runs(self, context: StudyStartContext, uri: str, artifacts: str | None) -> None:
        """The experiment, the study run (this run directory's earlier one when it resumes) and one run per
        arm under it, each created only if missing."""
        name = self.options.experiment or context.study_name
        found = self.client.get_experiment_by_name(name)
        self.experiment = (found.experiment_id if found is not None and found.lifecycle_stage == "active"
                           else self.client.create_experiment(name, artifact_location=artifacts))
        settings = hashlib.sha256(json.dumps(context.study, sort_keys=True, default=str).encode()).hexdigest()[:16]
        self.study_run = self._resumed_study_run(settings)
        if not self.study_run:
            study = {k: v for k, v in context.study.items() if k != "arms"}
            run = self.client.create_run(self.experiment, run_name=context.study_name,
                                         tags={LEVEL: "study", KEY: str(context.run_dir.resolve())})
            self.study_run = str(run.info.run_id)
            _log_params(self.client, self.study_run, {**flatten(study), "arms": ", ".join(context.arms)})
            atomic_write_text(self.folder / STUDY_RUN, json.dumps(
                {"tracking_uri": uri, "experiment_id": self.experiment, "run_id": self.study_run,
                 "settings": settings}, indent=1))
        for arm, arm_settings in context.arms.items():
            self.arm_params[arm] = flatten(arm_settings)
            self.arm_runs[arm] = self._run(self.experiment, "arm", arm, arm, self.study_run, self.arm_params[arm])

    def _resumed_study_run(self, settings: str) -> str:
        """The study run this run directory started before with the same settings, if it still exists."""
        try:
            stored = json.loads((self.folder / STUDY_RUN).read_text())
            if stored["settings"] != settings or stored["experiment_id"] != self.experiment:
                return ""
            run = self.client.get_run(stored["run_id"])
        except Exception:  # no record, another store, or the run was deleted: start a new study run
            return ""
        if run.info.lifecycle_stage != "active":
            return ""
        self.client.update_run(run.info.run_id, status="RUNNING")
        return str(run.info.run_id)

    @hookimpl
    def epoch_finished(self, context: EpochContext) -> None:
        from mlflow.entities import Metric

        run = self._cell(context.arm, context.repeat, context.fold, fresh=context.epoch == 1)
        now = int(time.time() * 1000)
        self.client.log_batch(run, metrics=[Metric(key, float(value), now, context.epoch)
                                            for key, value in context.metrics.items() if key != "epoch"])

    @hookimpl
    def fold_finished(self, context: FoldContext) -> None:
        from mlflow.entities import Metric

        run = self._cell(context.arm, context.repeat, context.fold, fresh=False)
        now = int(time.time() * 1000)
        self.client.log_batch(run, metrics=[Metric(key, float(value), now, 0) for key, value in context.metrics.items()])
        self.client.set_terminated(run, "FINISHED")
        self.final_keys += [key for key in context.metrics if key not in self.final_keys]

    @hookimpl
    def study_finished(self, context: StudyContext) -> None:
        from mlflow.entities import Metric

        self.artifacts = tuple(context.artifacts)
        now = int(time.time() * 1000)
        results = context.results
        for arm, run in self.arm_runs.items():
            rows = results[results["arm"] == arm] if "arm" in results else results.iloc[:0]
            metrics = []
            for key in (k for k in self.final_keys if k in rows):
                values = rows[key].astype(float)
                mean, sd = float(values.mean()), float(values.std()) if len(values) > 1 else math.nan
                metrics += [Metric(key, mean, now, 0), Metric(f"{key}_sd", sd, now, 0)]
            if metrics:
                self.client.log_batch(run, metrics=metrics)
            self.client.set_terminated(run, "FINISHED")

    def close(self, completed: bool) -> None:
        """The study run's artifacts (after the report is written), then every open run's end status."""
        if self.client is None or not self.study_run:
            return
        if completed:
            for path in self.artifacts:
                if path.is_file():
                    self.client.log_artifact(self.study_run, str(path))
        status = "FINISHED" if completed else "KILLED"
        for run in [*self.cell_runs.values(), *self.arm_runs.values()]:
            if self.client.get_run(run).info.status == "RUNNING":
                self.client.set_terminated(run, status)
        self.client.set_terminated(self.study_run, status)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (blocking); without fcntl (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _quote(text: str) -> str:
    return text.replace("'", "\\'")


def _log_params(client: Any, run: str, params: Mapping[str, Any]) -> None:
    """Params in batches of 100 (MLflow's limit per call), each value within MLflow's 6000 characters."""
    from mlflow.entities import Param

    items = [Param(key, str(value)[:6000]) for key, value in params.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run, params=items[start:start + 100])


def start(options: Mapping[str, Any], folder: Path) -> MlflowLogger:
    return MlflowLogger(MlflowOptions.model_validate(dict(options)), folder)


@hookimpl
def register_loggers() -> list[LoggerInfo]:
    return [LoggerInfo("mlflow", start, "MLflow runs nested study -> arm -> cell (params, per-epoch metrics, "
                       "the report as an artifact); local SQLite store in RUN/plugins/mlflow or any tracking URI",
                       MlflowOptions, ("mlflow", "mlflow"), keep=("mlflow.db", "artifacts"))]
