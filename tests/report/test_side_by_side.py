"""The side-by-side report of two runs: verdicts first, the shared protocol once, what differs per run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.report.render import build_report_data

pytestmark = pytest.mark.xdist_group("report")  # the finished run (tests/report/conftest.py) is made once, on one worker


def test_side_by_side_leads_with_verdicts_and_prints_the_shared_protocol_once(finished_run: Path, tmp_path: Path) -> None:
    import yaml

    other = tmp_path / "zero-init"
    shutil.copytree(finished_run, other)
    study = yaml.safe_load((other / "study.yaml").read_text())
    study["init"] = "zero_last_bn"
    (other / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
    assert main(["report", str(finished_run), str(other), "--out", str(tmp_path / "cmp.html")]) == 0
    html = (tmp_path / "cmp.html").read_text()
    data = build_report_data(finished_run, insight=False)
    assert data.answer is not None
    verdict = data.answer.sentences[0].replace("'", "&#39;")
    assert html.count(verdict) == 2 and html.index(verdict) < html.index("Shared protocol")  # each run's verdict first
    shared = html[html.index("<h2>Shared protocol</h2>"):]
    assert html.count("3-fold stratified CV grouped by patient") == 1 and "3-fold stratified CV" in shared
    assert "init: standard" not in shared and "init: zero_last_bn" not in shared
    assert "Differs from the shared protocol: init: zero_last_bn" in html  # only the differing part, per run
    assert html.index("init: standard") < html.index("init: zero_last_bn") < html.index("Shared protocol")
    assert "Scores on accuracy (mean over folds, 95 % interval): resnet18 " in html


def test_side_by_side_of_a_run_with_settings_names_its_sub_runs(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A run with settings has no results.csv of its own: report RUN_A RUN_B names the sub-runs to compare."""
    settings = tmp_path / "lrs"
    settings.mkdir()
    (settings / "study.yaml").write_text("name: lrs\nsettings:\n  - {id: lr-high}\n  - {id: lr-low}\n")
    assert main(["report", str(settings), str(tmp_path), "--out", str(tmp_path / "cmp.html")]) == 2
    err = capsys.readouterr().err
    assert "a run of several settings" in err and f"{settings}/settings/lr-high" in err, err
    assert not (tmp_path / "cmp.html").exists()
