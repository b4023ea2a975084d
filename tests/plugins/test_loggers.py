"""Experiment tracking: the epoch_finished hook, history.csv written live, the tensorboard logger,
and the ``loggers:`` field's checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from harness import hookimpl
from harness.cli.main import main
from harness.contracts import LoggerInfo
from harness.errors import HarnessError, StudyError
from harness.pipeline.validate import validate_study
from harness.registry import (
    Registry,
    build_registry,
    logger_missing,
    make_plugin_manager,
)
from harness.study.loader import load_study

TINY = {"dataset": {"image_size": 16, "options": {"classes": 2, "per_class": 8, "size": 16, "patients": 4}},
        "training": {"epochs": 2, "batch_size": 8}}

RECORDER = textwrap.dedent('''
    """A third-party plugin that watches each epoch, as the docs show (docs/plugins.md)."""
    import pandas as pd
    from harness import hookimpl

    seen = []

    @hookimpl
    def study_started(context):
        seen.append(("study", context.study_name, sorted(context.arms)))

    @hookimpl
    def epoch_finished(context):
        rows = len(pd.read_csv(context.cell_dir / "history.csv"))  # what a reader sees right now
        seen.append(("epoch", context.arm, context.repeat, context.fold, context.epoch, dict(context.metrics),
                     context.lr, context.seconds, context.run_dir, rows))
''')


@pytest.mark.slow  # one tiny end-to-end run (2 arms x 2 folds x 2 epochs at 16 px)
def test_epoch_hook_sees_live_history_and_tensorboard_reads_back(write_study, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard logger needs the tensorboard package")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "epoch_recorder.py").write_text(RECORDER)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    study = write_study({**TINY, "plugins": ["epoch_recorder"], "loggers": ["tensorboard"]})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    import epoch_recorder

    assert epoch_recorder.seen[0] == ("study", "tiny", ["plain", "se"])
    epochs = [e for e in epoch_recorder.seen if e[0] == "epoch"]
    assert [(e[1], e[3], e[4]) for e in epochs] == [(a, f, n) for a in ("plain", "se") for f in (0, 1) for n in (1, 2)]
    for _, arm, repeat, fold, epoch, metrics, lr, seconds, run_dir, rows in epochs:
        history = pd.read_csv(out / "cells" / arm / f"r{repeat}-f{fold}" / "history.csv")
        assert rows == epoch  # history.csv held this epoch's row when the hook ran, not only at the cell's end
        assert list(metrics) == list(history.columns) and metrics["epoch"] == epoch
        assert metrics["val_accuracy"] == pytest.approx(history.val_accuracy[epoch - 1])
        assert lr == metrics["lr"] == history.lr[epoch - 1] and seconds == metrics["seconds"] > 0
        assert run_dir == out
    # tensorboard: one run per cell, a scalar per history column per epoch, the arm's settings as hparams
    board = out / "plugins" / "tensorboard"  # the logger's own folder
    cells = sorted(p.relative_to(board).as_posix() for p in board.glob("*/*"))
    assert cells == ["plain/r0-f0", "plain/r0-f1", "se/r0-f0", "se/r0-f1"]
    events = EventAccumulator(str(board / "se" / "r0-f1"))
    events.Reload()
    history = pd.read_csv(out / "cells" / "se" / "r0-f1" / "history.csv")
    scalars = events.Scalars("val_loss")
    assert [s.step for s in scalars] == [1, 2]
    assert [s.value for s in scalars] == pytest.approx(history.val_loss.tolist(), rel=1e-6)
    result = pd.read_csv(out / "results.csv").set_index(["arm", "fold"]).loc[("se", 1)]
    assert events.Scalars("final/accuracy")[0].value == pytest.approx(result.accuracy, rel=1e-6)
    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["attention.name"].string_value == "se" and hparams["attention.reduction"].number_value == 4
    assert hparams["training.optimizer.lr"].number_value == pytest.approx(0.05) and hparams["fold"].number_value == 1
    assert sorted(p.name for p in (out / "plugins").iterdir()) == ["tensorboard"]  # only the declared loggers run


def _validate(write_study, loggers: list[object], registry: Registry) -> StudyError:  # type: ignore[no-untyped-def]
    study = load_study(write_study({"loggers": loggers}))
    with pytest.raises(StudyError) as caught:
        validate_study(study, registry)
    return caught.value


def test_unknown_logger_names_the_field_and_lists_the_loggers(write_study, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    error = _validate(write_study, ["tensorbord"], builtin_registry)
    assert len(error.problems) == 1
    problem = error.problems[0]
    assert problem.path == "loggers.0" and problem.line is not None and problem.line > 1
    assert "unknown logger 'tensorbord' (did you mean 'tensorboard'?)" in problem.message
    assert "known: mlflow, tensorboard" in problem.message


def test_logger_options_are_checked_at_load_time(write_study, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    error = _validate(write_study, [{"name": "mlflow", "trackin_uri": "http://localhost:5000"}], builtin_registry)
    assert [p.path for p in error.problems] == ["loggers.0.trackin_uri"]
    assert "mlflow: no option 'trackin_uri' (did you mean 'tracking_uri'?)" in error.problems[0].message
    with pytest.raises(StudyError, match="logger 'tensorboard' is listed twice"):
        load_study(write_study({"loggers": ["tensorboard", "tensorboard"]}))


class _Closing:
    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log, self.fail = log, fail

    @hookimpl
    def epoch_finished(self, context) -> None:  # type: ignore[no-untyped-def]
        self.log.append(f"epoch {context.epoch}")

    def close(self, completed: bool) -> None:
        self.log.append(f"closed {completed}")
        if self.fail:
            raise OSError("disk gone")


def _registry_with(*infos: LoggerInfo):  # type: ignore[no-untyped-def]
    class Loggers:
        @hookimpl
        def register_loggers(self):  # type: ignore[no-untyped-def]
            return list(infos)

    pm, records = make_plugin_manager(entry_points=False)
    pm.register(Loggers(), name="loggers")
    return build_registry(pm, records)


def test_loggers_run_for_one_run_only_and_close_errors_name_the_logger(tmp_path: Path) -> None:
    log: list[str] = []
    folders: list[Path] = []
    registry = _registry_with(LoggerInfo("ok", lambda o, f: folders.append(f) or _Closing(log), "fine"),
                              LoggerInfo("bad", lambda o, f: _Closing(log, fail=True), "fails to close"))
    started = registry.start_loggers([("ok", {}), ("bad", {})], lambda name: tmp_path / "plugins" / name)
    assert folders == [tmp_path / "plugins" / "ok"] and folders[0].is_dir()  # its own folder, created
    from harness.contracts import EpochContext

    context = EpochContext("s", Path("."), "a", 0, 0, 3, {"epoch": 3.0}, 0.1, 1.0, Path("."))
    registry.epoch_finished(context)
    assert log == ["epoch 3", "epoch 3"]
    with pytest.raises(HarnessError, match=r"plugin 'logger bad' failed to close: OSError: disk gone"):
        registry.stop_loggers(started, completed=True)
    assert log[2:] == ["closed True", "closed True"]  # every logger closed, then the error
    registry.epoch_finished(context)  # unregistered: a later run on this registry does not log
    assert len(log) == 4


def test_missing_package_says_which_extra_installs_it(tmp_path: Path) -> None:
    info = LoggerInfo("fancy", lambda o, f: object(), "needs a package", None, ("no_such_module_xyz", "fancy"))
    assert logger_missing(info) == ("the fancy logger needs the 'no_such_module_xyz' package, which is not "
                                    "installed: pip install 'ablation-harness[fancy]' (or pip install no_such_module_xyz)")
    registry = _registry_with(info)
    with pytest.raises(HarnessError, match=r"loggers: the fancy logger needs .*ablation-harness\[fancy\]"):
        registry.start_loggers([("fancy", {})], lambda name: tmp_path / name)
    assert len(registry.plugin_manager.get_plugins()) == 1  # nothing half-started stays registered


def test_mlflow_default_store_is_sqlite_in_the_loggers_folder(tmp_path: Path) -> None:
    from harness_plugins.loggers.mlflow import MlflowLogger, MlflowOptions

    uri, artifacts = MlflowLogger(MlflowOptions(), tmp_path)._store()
    assert uri == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert artifacts == (tmp_path.resolve() / "artifacts").as_uri()
    remote = MlflowLogger(MlflowOptions(tracking_uri="http://127.0.0.1:5000"), tmp_path)._store()
    assert remote == ("http://127.0.0.1:5000", None)  # the server decides where artifacts go


def test_fresh_removes_tensorboard_runs_and_the_mlflow_run_id_but_keeps_the_mlflow_store(tmp_path: Path) -> None:
    from harness.registry import build_registry, make_plugin_manager
    from harness.rundir import RunDir

    run = RunDir(tmp_path)
    run.prepare()  # a run directory: the harness's manifest
    (run.plugin_dir("tensorboard") / "a" / "r0-f1").mkdir(parents=True)
    mlflow = run.plugin_dir("mlflow")
    (mlflow / "artifacts").mkdir(parents=True)
    for name in ("study_run.json", "mlflow.db"):
        (mlflow / name).write_text("{}")
    registry = build_registry(*make_plugin_manager(
        ["harness_plugins.loggers.mlflow", "harness_plugins.loggers.tensorboard"], entry_points=False))
    keep = registry.kept_plugin_files()
    assert keep == ["plugins/mlflow/mlflow.db", "plugins/mlflow/artifacts"]  # declared by the plugin, not the core
    run.clear(keep=keep)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == [".harness-run.json", "plugins", "plugins/mlflow", "plugins/mlflow/artifacts",
                    "plugins/mlflow/mlflow.db"]
