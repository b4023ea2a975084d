"""A cell's bookkeeping: done only with the same fingerprint; a finished cell keeps the weights it was told to."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.run.cells import is_done, mixed_threads, prune_checkpoints
from harness.rundir import BEST, LAST, RESULT


def test_a_cell_is_done_only_with_its_fingerprint(tmp_path: Path) -> None:
    assert not is_done(tmp_path, "abc")  # no result.json
    (tmp_path / RESULT).write_text("{trunc")
    assert not is_done(tmp_path, "abc")  # a damaged one
    (tmp_path / RESULT).write_text(json.dumps({"fingerprint": "abc", "accuracy": 0.9}))
    assert is_done(tmp_path, "abc") and not is_done(tmp_path, "abd")


@pytest.mark.parametrize("policy, kept", [("all", [BEST, LAST]), ("best", [BEST]), ("none", [])])
def test_pruning_keeps_what_the_policy_names(tmp_path: Path, policy: str, kept: list[str]) -> None:
    for name in (BEST, LAST, RESULT):
        (tmp_path / name).write_bytes(b"x")
    prune_checkpoints(tmp_path, policy)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*kept, RESULT])


def test_cells_of_different_thread_counts_are_named() -> None:
    assert mixed_threads(pd.DataFrame({"threads": [2, 2, None]})) == ""  # a cell from before threads were kept
    assert mixed_threads(pd.DataFrame({"accuracy": [0.5]})) == ""
    assert "cells trained with 1, 2 CPU threads" in mixed_threads(pd.DataFrame({"threads": [2, 1, 2]}))


def test_cells_reused_under_another_thread_setting_are_named(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Old code: a rerun with --threads 2 reused every 1-thread cell, wrote threads: 2 into study.yaml and run.json
    and warned of nothing, though that study.yaml does not reproduce the numbers."""
    assert mixed_threads(pd.DataFrame({"threads": [1, 1]}), 1) == ""
    assert mixed_threads(pd.DataFrame({"threads": [1, 1]}), None) == ""  # the study sets no count: nothing to differ from
    from harness.cli.main import main

    study = write_study({"training": {"epochs": 1, "threads": 1}}, arms={"plain": {"backbone": "resnet20"}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    assert not json.loads((out / "run.json").read_text())["warnings"]
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report", "--threads", "2"]) == 0  # all reused
    assert set(pd.read_csv(out / "results.csv")["threads"]) == {1}
    warning = json.loads((out / "run.json").read_text())["warnings"][0]
    assert "every cell trained with 1 CPU thread(s), but this run's training.threads is 2" in warning
    assert "rerun with --threads 1" in warning


def test_a_resumed_run_of_mixed_thread_counts_says_so(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.cli.main import main

    study = write_study({"training": {"epochs": 1, "threads": 1}}, arms={"plain": {"backbone": "resnet20"}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["threads"]) == {1} and not json.loads((out / "run.json").read_text())["failures"]
    cell = next((out / "cells" / "plain").iterdir()) / RESULT  # as if this cell had trained with two threads
    cell.write_text(json.dumps({**json.loads(cell.read_text()), "threads": 2}))
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0  # every cell reused
    run_info = json.loads((out / "run.json").read_text())
    assert not run_info["failures"] and "cells trained with 1, 2 CPU threads" in run_info["warnings"][0]
    assert main(["report", str(out)]) == 0
    assert "cells trained with 1, 2 CPU threads" in (out / "report.html").read_text()
