"""harness.rundir's typed reads and writes: every record round-trips at its documented name, in its format."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from harness import rundir as files
from harness.errors import HarnessError
from harness.rundir import Cell, RunDir


def test_every_record_round_trips_at_its_name_in_its_format(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    frame = pd.DataFrame({"arm": ["a", "b"], "repeat": [0, 0], "fold": [0, 0], "accuracy": [0.5, 0.75]})
    run.write_study({"name": "s", "seed": 3, "arms": {"a": {}, "b": {}}})
    run.write_results(frame)
    run.write_predictions(frame)
    run.write_splits(pd.DataFrame({"sample_id": ["007", "8"], "group": ["g1", None]}))
    run.write_classes(["benign", "malignant"])
    run.write_run_info({"where": tmp_path})
    run.write_arms({"a": {"params": 1}})
    run.write_data_summary({"n": 2})
    run.write_stats('{"metric": "accuracy"}')
    run.write_stopping({"status": "settled", "alpha": float("nan")})
    run.write_tuning({"when": tmp_path})
    run.write_insight({"gallery": {}})
    run.write_across({"baseline": "a"})
    assert run.study() == {"name": "s", "seed": 3, "arms": {"a": {}, "b": {}}}
    pd.testing.assert_frame_equal(run.results(), frame)
    pd.testing.assert_frame_equal(run.predictions(), frame)  # type: ignore[arg-type]
    splits = run.splits(dtype={"sample_id": str})
    assert splits is not None and list(splits.sample_id) == ["007", "8"]  # ids as text: leading zeros kept
    assert run.classes() == ["benign", "malignant"]
    assert run.run_info() == {"where": str(tmp_path)} and run.arms_info() == {"a": {"params": 1}}
    assert run.data_summary() == {"n": 2} and run.stats() == {"metric": "accuracy"}
    assert run.stopping()["status"] == "settled"  # type: ignore[index]
    assert run.tuning() == {"when": str(tmp_path)} and run.insight() == {"gallery": {}}
    assert run.across() == {"baseline": "a"}
    # the formats the files have always had (json indent 1, insight on one line, CSV without an index)
    assert (tmp_path / files.RUN_INFO).read_text() == json.dumps({"where": str(tmp_path)}, indent=1)
    assert (tmp_path / files.INSIGHT).read_text() == '{"gallery": {}}'
    assert (tmp_path / files.RESULTS).read_text().splitlines()[0] == "arm,repeat,fold,accuracy"
    written = {p.name for p in tmp_path.iterdir()}
    assert written == {files.STUDY, files.RESULTS, files.PREDICTIONS, files.SPLITS, files.CLASSES, files.RUN_INFO,
                       files.ARMS, files.DATA_SUMMARY, files.STATS, files.STOPPING, files.TUNING, files.INSIGHT,
                       files.ACROSS}  # each at its name, and no temp file left behind
    run.write_predictions(None)
    assert run.predictions() is None and not run.has(files.PREDICTIONS)


def test_missing_records_read_as_none_and_missing_results_name_the_fix(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert (run.predictions(), run.splits(), run.stats(), run.insight(), run.stopping()) == (None,) * 5
    assert (run.study(), run.run_info(), run.classes()) == ({}, {}, [])
    with pytest.raises(HarnessError, match="has no results.csv .*harness run STUDY --out RUN_DIR"):
        run.results()
    (tmp_path / files.STOPPING).write_text("{half")
    assert run.stopping() is None
    with pytest.raises(ValueError):
        run.stopping(strict=True)


def test_writes_respect_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        RunDir(tmp_path).write_classes(["a"])
        Cell(tmp_path).write_fingerprint("abc")
    finally:
        os.umask(old)
    assert (tmp_path / files.CLASSES).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / files.FINGERPRINT).stat().st_mode & 0o777 == 0o600
