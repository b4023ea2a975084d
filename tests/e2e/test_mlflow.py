"""The mlflow logger against a real ``mlflow server`` (SQLite backend, started here on a free port),
read back with MlflowClient: nesting study -> arm -> cell, params, metric histories, the report artifact."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.main import main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("mlflow")]  # one server per module, on one worker
pytest.importorskip("mlflow", reason="the mlflow logger needs mlflow (pip install 'ablation-harness[mlflow]')")

STARTUP_SECONDS = 240  # the server's start dominates; generous for a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")  # once per xdist worker, even when other modules' tests run between
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real tracking server with a SQLite backend and served artifacts; torn down with its workers."""
    root = tmp_path_factory.mktemp("mlflow_server")
    port = _free_port()
    executable = Path(sys.executable).with_name("mlflow")
    command = [str(executable) if executable.exists() else shutil.which("mlflow") or "mlflow", "server",
               "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "art"),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(root / "server.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer on {url}:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the server and the uvicorn worker it started
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_runs_are_nested_with_params_metric_histories_and_the_report(server: str, write_study,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    from mlflow import MlflowClient

    logger = {"name": "mlflow", "tracking_uri": server, "experiment": "tracking-test"}
    study = write_study({"dataset": {"image_size": 16, "options": {"classes": 2, "per_class": 8, "size": 16,
                                                                   "patients": 4}},
                         "training": {"epochs": 2, "batch_size": 8}, "loggers": [logger]})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet"]) == 0

    client = MlflowClient(tracking_uri=server)
    experiment = client.get_experiment_by_name("tracking-test")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    by_level: dict[str, list] = {}  # type: ignore[type-arg]
    for run in runs:
        by_level.setdefault(run.data.tags["harness.level"], []).append(run)
    assert {k: len(v) for k, v in by_level.items()} == {"study": 1, "arm": 2, "cell": 4}
    study_run = by_level["study"][0]
    assert study_run.info.run_name == "tiny" and study_run.info.status == "FINISHED"
    assert study_run.data.params["cv.folds"] == "2" and study_run.data.params["arms"] == "plain, se"
    arms = {r.info.run_name: r for r in by_level["arm"]}
    assert set(arms) == {"plain", "se"}
    assert all(r.data.tags["mlflow.parentRunId"] == study_run.info.run_id for r in arms.values())
    assert arms["se"].data.params["attention.name"] == "se" and arms["se"].data.params["attention.reduction"] == "4"
    assert arms["plain"].data.params["training.optimizer.lr"] == "0.05"

    results = pd.read_csv(out / "results.csv").set_index(["arm", "fold"])
    for cell in by_level["cell"]:
        arm, name = cell.info.run_name.split("/")
        fold = int(name.split("-f")[1])
        assert cell.data.tags["mlflow.parentRunId"] == arms[arm].info.run_id and cell.info.status == "FINISHED"
        assert cell.data.params["fold"] == str(fold) and cell.data.params["backbone"] == "resnet20"
        history = pd.read_csv(out / "cells" / arm / name / "history.csv")
        logged = client.get_metric_history(cell.info.run_id, "val_accuracy")
        assert [m.step for m in logged] == [1, 2]
        assert [m.value for m in logged] == pytest.approx(history.val_accuracy.tolist())
        assert cell.data.metrics["accuracy"] == pytest.approx(results.loc[(arm, fold), "accuracy"])
    for arm, run in arms.items():  # an arm's metric is the mean of its cells
        assert run.data.metrics["accuracy"] == pytest.approx(results.loc[arm, "accuracy"].mean())

    artifacts = {a.path for a in client.list_artifacts(study_run.info.run_id)}
    assert {"report.html", "results.csv", "study.yaml"} <= artifacts
    report = client.download_artifacts(study_run.info.run_id, "report.html", str(tmp_path / "downloaded"))
    assert Path(report).read_bytes() == (out / "report.html").read_bytes()
    assert not (out / "plugins" / "mlflow" / "mlflow.db").exists()  # a tracking URI was given: no local store
