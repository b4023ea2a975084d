"""No stale answers after a changed, interrupted rerun (issue 26.5); workers and ``harness report`` import
only what the main process would, and report imports a run's plugins only when asked (26.4)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from harness.cli.main import main
from harness.errors import Interrupted
from harness.study.loader import _deep_merge

SMALL = {"training": {"epochs": 1}, "dataset": {"image_size": 16, "options": {"size": 16, "per_class": 8}}}
SUMMARIES = ("results.csv", "predictions.csv", "stats.json", "report.html", "run.json", "arms.json")
EVIL = "import os, pathlib\npathlib.Path(__file__).with_name('IMPORTED-' + str(os.getpid())).write_text('ran')\n"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_study_factory) -> Path:  # type: ignore[no-untyped-def]
    """One finished two-arm run with its report (copied by each test that changes it)."""
    folder = tmp_path_factory.mktemp("finished")
    study = folder / "study_src.yaml"
    study.write_text(yaml.safe_dump(_deep_merge(tiny_study_factory(), SMALL), sort_keys=False))
    assert main(["run", str(study), "--out", str(folder / "run"), "--quiet"]) == 0
    return folder


def _copy(finished_run: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(finished_run, tmp_path / "copy")
    return tmp_path / "copy" / "study_src.yaml", tmp_path / "copy" / "run"


def test_a_changed_interrupted_rerun_leaves_no_earlier_answers(finished_run: Path, tmp_path: Path, builtin_registry,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from harness.run.runner import RunOptions, run_study
    from harness.study.loader import load_study

    study, out = _copy(finished_run, tmp_path)
    assert all((out / name).exists() for name in SUMMARIES)

    def ctrl_c(*_: object) -> None:
        raise KeyboardInterrupt

    changed = load_study(study, ["training.epochs=2"])
    with pytest.raises(Interrupted):  # Ctrl-C in the first epoch of the first retrained cell
        run_study(changed, builtin_registry, RunOptions(out, quiet=True, report=None, on_epoch=ctrl_c))
    assert [name for name in SUMMARIES if name != "arms.json" and (out / name).exists()] == ["results.csv"]
    assert yaml.safe_load((out / "study.yaml").read_text())["training"]["epochs"] == 2
    capsys.readouterr()
    for command in (["compare", str(out)], ["plan", str(out), "--effect", "0.01"], ["report", str(out)]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "holds no finished cell" in err and "rerun the study" in err, err

    (out / "results.csv").write_text("arm,repeat,fold,accuracy,n_val,n_train\nold-arm,0,0,0.5,8,8\n")
    assert main(["compare", str(out)]) == 2
    assert "arm(s) old-arm are not in the study" in capsys.readouterr().err
    shutil.rmtree(out / "cells")
    (out / "results.csv").unlink()
    assert main(["compare", str(out)]) == 2
    assert "has no results.csv" in capsys.readouterr().err


def test_report_imports_a_runs_plugins_only_when_trusted(finished_run: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _, out = _copy(finished_run, tmp_path)
    code = tmp_path / "code"
    code.mkdir()
    (code / "evil_report_plugin.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(code))  # importable: only the flag decides
    monkeypatch.delitem(sys.modules, "evil_report_plugin", raising=False)
    study = yaml.safe_load((out / "study.yaml").read_text())
    study["arms"]["se"] = study["arms"]["plain"]  # and two identical arms: flagged in the report
    (out / "study.yaml").write_text(yaml.safe_dump({**study, "plugins": ["evil_report_plugin"]}, sort_keys=False))
    (out / ".report.html.k1ll3d_x.tmp").write_text("<html>half")  # left by a killed harness report
    assert main(["report", str(out)]) == 0
    assert not list(code.glob("IMPORTED-*"))
    assert "not importing the plugin module(s) evil_report_plugin" in capsys.readouterr().err
    html = (out / "report.html").read_text()
    assert "plugin evil_report_plugin (named in study.yaml) not imported" in html
    assert "arms plain and se are identical" in html
    assert not (out / ".report.html.k1ll3d_x.tmp").exists()
    assert main(["report", str(out), "--trust-plugins"]) == 0
    assert list(code.glob("IMPORTED-*"))
    monkeypatch.delitem(sys.modules, "evil_report_plugin", raising=False)


def test_workers_do_not_import_modules_from_the_working_directory(write_study, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    study = write_study({**SMALL, "plugins": ["evilmod"]})
    (tmp_path / "evilmod.py").write_text(EVIL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "evilmod", raising=False)
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--quiet", "--no-report", "--workers", "2"]) == 0
    assert "evilmod" not in sys.modules  # refused in the main process (not on its path) ...
    assert not list(tmp_path.glob("IMPORTED-*"))  # ... and not run by the worker
    import subprocess

    from harness.cli.workers import worker_python

    # the same check fails without -P: python -m puts the working directory first on sys.path
    subprocess.run([sys.executable, "-c", "import evilmod"], check=True, cwd=tmp_path)
    assert list(tmp_path.glob("IMPORTED-*"))
    assert subprocess.run([*worker_python(), "-c", "import evilmod"], cwd=tmp_path, capture_output=True).returncode == 1


def test_a_last_checkpoint_left_beside_a_finished_cell_is_pruned_on_the_rerun(finished_run: Path, tmp_path: Path) -> None:
    study, out = _copy(finished_run, tmp_path)
    cell = out / "cells" / "plain" / "r0-f0"
    result = (cell / "result.json").stat().st_mtime_ns
    (cell / "last.pt").write_bytes((cell / "best.pt").read_bytes())  # what a kill after result.json leaves
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    assert not (cell / "last.pt").exists() and (cell / "best.pt").exists()
    assert (cell / "result.json").stat().st_mtime_ns == result  # reused, not trained again
