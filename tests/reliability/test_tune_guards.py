"""``harness tune`` ends: search keys checked against the registry before any trial, a bounded number of
failed trials in a row, and --trials 0 or negative refused."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml

from harness.cli.main import main

SPACE = {"training.optimizer.lr": {"low": 1.0e-3, "high": 0.1, "log": True}}


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    """Today's code loops forever on failing trials: fail the test after 90 s instead of hanging."""

    def too_long(signum: int, frame: Any) -> None:
        raise TimeoutError("harness tune did not end within 90 s")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(90)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _tune(write_study, space: dict[str, Any], **update: Any) -> Path:  # type: ignore[no-untyped-def]
    return write_study({"tune": {"arms": ["plain"], "trials": 20, "sampler": "random", "space": space}, **update})


def test_misspelled_search_key_is_refused_before_any_trial(write_study, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    study = _tune(write_study, {"training.optimizer.lrr": {"low": 1.0e-3, "high": 0.1}})
    out = tmp_path / "run"
    assert main(["validate", str(study)]) == 2  # validate catches it too
    assert main(["tune", str(study), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "tune.space.training.optimizer.lrr: cannot search 'training.optimizer.lrr' with value 0.001" in err
    assert "no option 'lrr' (did you mean 'lr'" in err and "Traceback" not in err
    assert not (out / "tuning.db").exists()  # no trial ran


def test_scheduler_option_out_of_range_is_refused_before_any_trial(write_study, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    study = _tune(write_study, {"training.scheduler.step_size": {"low": 0, "high": 3}})
    assert main(["tune", str(study), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "tune.space.training.scheduler.step_size: cannot search 'training.scheduler.step_size' with value 0" in err


@pytest.mark.parametrize("trials", ["0", "-3"])
def test_zero_or_negative_trials_is_an_error(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
                                             trials: str) -> None:
    study = _tune(write_study, SPACE)
    out = tmp_path / "run"
    assert main(["tune", str(study), "--out", str(out), "--quiet", "--trials", trials, "--workers", "2"]) == 2
    assert f"--trials must be at least 1 (got {trials})" in capsys.readouterr().err
    assert not (out / "tuning.db").exists()  # refused before any worker started


def test_trials_that_keep_failing_stop_with_the_first_failure(write_study, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    folder = tmp_path / "data"
    (folder / "images").mkdir(parents=True)
    rows = ["image_path,label,patient"]
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8), mode="L").save(folder / "images" / f"{i}.png")
        rows.append(f"images/{i}.png,{'ab'[i % 2]},P{i % 6}")
    (folder / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rows.append("images/broken.png,a,P0")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    study = _tune(write_study, SPACE)
    data = yaml.safe_load(study.read_text())
    data["dataset"] = {"name": "csv", "image_size": 32, "options": {"path": str(folder / "labels.csv")}}
    study.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    assert main(["tune", str(study), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert "tune tiny:plain: 5 trials in a row failed, so tuning stopped" in captured.err
    assert "The first of them failed with: 1 image(s) could not be read" in captured.err and "broken.png" in captured.err
    assert "trial 0 failed: 1 image(s) could not be read" in captured.err  # a diagnostic: stderr and run.log
    assert "WARNING harness: tune tiny:plain: trial 0 failed: 1 image(s)" in (out / "run.log").read_text()
    assert "Traceback" not in captured.err + captured.out
    trials = optuna.load_study(study_name="tiny:plain", storage=f"sqlite:///{out / 'tuning.db'}").trials
    assert [t.state.name for t in trials] == ["FAIL"] * 5
