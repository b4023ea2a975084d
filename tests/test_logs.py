"""Terminal behaviour: results on stdout, log lines on stderr and in run.log, progress bars only on a
terminal, --quiet/--verbose, help with defaults and examples, exit codes, shell completion, shipped studies."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest

from harness.cli.main import _parser, main
from harness.errors import HarnessError
from harness.logs import Progress, console, log, verbosity_level


@pytest.mark.slow  # one tiny end-to-end run (~10-25 s)
def test_redirected_run_prints_results_on_stdout_and_logs_to_stderr_and_run_log(  # type: ignore[no-untyped-def]
        write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = write_study({"training": {"epochs": 1}, "dataset": {"image_size": 16, "options": {"size": 16}}},
                        arms={"plain": {"backbone": "resnet20", "attention": "none"}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--no-report"]) == 0
    captured = capsys.readouterr()
    assert "results: " in captured.out and "plain" in captured.out
    assert "cell" not in captured.out and "study " not in captured.out  # diagnostics stay off stdout
    assert "cell 1/2 done: plain r0 f0" in captured.err and "cell 2/2 done" in captured.err
    assert "\r" not in captured.err and "\r" not in captured.out  # not a terminal: no bars
    logged = (out / "run.log").read_text()
    assert "INFO harness: study " in logged and "cell 2/2 done" in logged


def test_progress_draws_a_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with caplog.at_level(logging.INFO, logger="harness"), Progress(3, "study", "cell") as bar:
        for _ in range(3):
            bar.update(note="x")
    assert "\r" in screen.getvalue() and "3/3" in screen.getvalue()
    assert not [r for r in caplog.records if "done" in r.getMessage()]  # the bar replaces the lines
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with caplog.at_level(logging.INFO, logger="harness"), Progress(2, "study", "cell") as bar:
        bar.update(note="a r0 f0")
    assert [r.getMessage() for r in caplog.records if "done" in r.getMessage()] == ["cell 1/2 done: a r0 f0"]


@pytest.mark.parametrize("flags, shown", [(["--quiet"], {"WARN"}), ([], {"INFO", "WARN"}),
                                          (["-v"], {"DEBUG", "INFO", "WARN"})])
def test_quiet_and_verbose_set_what_stderr_shows(flags: list[str], shown: set[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args([*flags, "plugins"])
    later = _parser().parse_args(["plugins", *flags])  # global flags work after the subcommand too
    assert (args.quiet, args.verbose) == (later.quiet, later.verbose)
    with console(verbosity_level(args.quiet, args.verbose)):
        log.debug("DEBUG")
        log.info("INFO")
        log.warning("WARN")
    assert set(capsys.readouterr().err.split()) == shown


def test_warnings_reach_run_log_and_stay_visible_to_recorders(tmp_path: Path) -> None:
    import warnings

    from harness.logs import run_log

    with pytest.warns(UserWarning, match="odd data"), console(), run_log(tmp_path / "run.log"):
        warnings.warn("odd data", stacklevel=1)
    assert "WARNING harness: UserWarning: odd data" in (tmp_path / "run.log").read_text()


def test_run_and_tune_share_the_workers_flag() -> None:
    for command in ("run", "tune"):
        for flag in ("--workers", "--parallel"):
            assert _parser().parse_args([command, "s.yaml", flag, "3"]).workers == 3


def test_bare_name_runs_a_shipped_study_and_studies_copy_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from harness.shipped import resolve_study, shipped_studies

    monkeypatch.chdir(tmp_path)
    assert resolve_study(Path("quickstart")) == shipped_studies()["quickstart"]
    (tmp_path / "quickstart").write_text("name: mine\n")
    assert resolve_study(Path("quickstart")) == Path("quickstart")  # a file of that name wins
    with pytest.raises(HarnessError, match=r"quickstrt: no such file, and no shipped study of that name \(did you mean"):
        resolve_study(Path("quickstrt"))
    assert resolve_study(Path("nope.yaml")) == Path("nope.yaml")  # a file name: 'not found' later, as before
    (tmp_path / "se_reduction.yaml").write_text("name: mine\n")
    assert resolve_study(Path("se_reduction")) == Path("se_reduction.yaml")  # your copy wins over the shipped one
    (tmp_path / "se_reduction.yaml").unlink()
    assert main(["validate", "se_reduction", "--no-data"]) == 0
    assert "se_reduction.yaml: OK" in capsys.readouterr().out
    assert main(["studies"]) == 0 and "quickstart" in capsys.readouterr().out
    assert main(["studies", "--copy", "mine"]) == 0
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == sorted(f"{n}.yaml" for n in shipped_studies())
    assert main(["studies", "--copy", "mine"]) == 2  # nothing overwritten
    assert "already exist" in capsys.readouterr().err
