"""Exact resume in every state: SIGKILL between a fold's last checkpoint and its cell being marked done
(harness/run/faults.py places the kill), and SIGKILL at random moments of a small study.

The killed runs are forked children of the test process (torch is already imported), so a kill costs
milliseconds, not an interpreter start; the kill itself is a real SIGKILL."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from harness.cli.main import main
from harness.run import faults

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("resume")]  # one worker shares the module fixture; end-to-end runs: `-m "not slow"` skips them; CI runs them

WINDOWS = ["terminal-saved", "evaluated", "cell-files-written", "result-written"]
STOPPING = {"training": {"epochs": 6, "early_stopping": {"patience": 1}, "selection": {"inner_fraction": 0.3}}}
ONE_ARM = {"plain": {"backbone": "resnet20", "attention": "none"}}


def _args(study: Path, out: Path) -> list[str]:
    return ["run", str(study), "--out", str(out), "--quiet", "--no-report"]


def _child(study: Path, out: Path, kill_at: str = "", kill_after: float | None = None) -> int | None:
    """Run the study in a forked child; kill it at a named moment or after ``kill_after`` seconds."""

    def target() -> None:
        os.environ["HARNESS_KILL_AT"] = kill_at
        faults.reset()
        os._exit(main(_args(study, out)))

    process = multiprocessing.get_context("fork").Process(target=target)
    process.start()
    process.join(kill_after if kill_after is not None else 120)
    if process.is_alive() and kill_after is not None:
        os.kill(process.pid, signal.SIGKILL)
        process.join(30)
    assert not process.is_alive(), "the run hung"
    return process.exitcode


def _results(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv").drop(columns=["seconds"])


def _assert_same_run(out: Path, reference: Path) -> None:
    pd.testing.assert_frame_equal(_results(out), _results(reference))
    pd.testing.assert_frame_equal(pd.read_csv(out / "predictions.csv"), pd.read_csv(reference / "predictions.csv"))
    for cell in (reference / "cells").glob("*/*"):
        same = cell.relative_to(reference)
        history = pd.read_csv(out / same / "history.csv").drop(columns=["seconds", "data_seconds"])
        pd.testing.assert_frame_equal(history, pd.read_csv(cell / "history.csv").drop(columns=["seconds", "data_seconds"]))


@pytest.fixture(scope="session")  # once per xdist worker, even when other modules' tests run between
def stopping_reference(tmp_path_factory: pytest.TempPathFactory, tiny_study_factory) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """A one-arm study whose first fold stops early, run once without interruption."""
    import yaml

    from harness.study.loader import _deep_merge

    folder = tmp_path_factory.mktemp("stopping")
    study = folder / "study.yaml"
    data = _deep_merge(tiny_study_factory(), STOPPING)
    data["arms"] = ONE_ARM
    study.write_text(yaml.safe_dump(data, sort_keys=False))
    reference = folder / "reference"
    assert main(_args(study, reference)) == 0
    first = _results(reference).iloc[0]
    assert first.note.startswith("early stop") and first.epochs < 6, "the fixture needs a fold that stops early"
    return study, reference


@pytest.mark.parametrize("window", WINDOWS)
def test_kill_after_an_early_stop_does_not_train_on(stopping_reference: tuple[Path, Path], tmp_path: Path,
                                                     window: str) -> None:
    study, reference = stopping_reference
    out = tmp_path / "killed"
    assert _child(study, out, kill_at=f"{window}@1") == -signal.SIGKILL
    assert main(_args(study, out)) == 0
    _assert_same_run(out, reference)  # same epochs, same note, same predictions: the fold did not train on


@pytest.mark.parametrize("window", WINDOWS[:3])
def test_kill_after_divergence_keeps_the_diverged_state(write_study, tmp_path: Path, window: str) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"epochs": 3, "optimizer": {"lr": 1.0e12}}}, arms=ONE_ARM)
    reference = tmp_path / "reference"
    with pytest.warns(UserWarning, match="diverged"):
        assert main(_args(study, reference)) == 0
    assert (_results(reference).status == "diverged").all()
    out = tmp_path / "killed"
    assert _child(study, out, kill_at=f"{window}@1") == -signal.SIGKILL
    with pytest.warns(UserWarning, match="diverged"):
        assert main(_args(study, out)) == 0
    _assert_same_run(out, reference)  # "loss became nan at epoch 1", not a retrained epoch 2


def test_sigkill_at_random_moments_then_rerun_is_identical(stopping_reference: tuple[Path, Path], tmp_path: Path) -> None:
    """20 SIGKILLs, each at a random time or a random named window, each followed by a rerun that is killed
    in turn; the final rerun's results and predictions equal the uninterrupted run's (time columns aside)."""
    study, reference = stopping_reference
    out = tmp_path / "killed"
    rng = random.Random(15)
    kills, started = 0, time.monotonic()
    while kills < 20:
        if kills % 4 == 3:
            code = _child(study, out, kill_at=f"{rng.choice([*WINDOWS, 'best-saved'])}@{rng.randint(1, 3)}")
        else:
            code = _child(study, out, kill_after=rng.uniform(0.05, 2.5))
        if code == 0:  # the study finished before the kill: start over so every kill lands in real work
            import shutil

            shutil.rmtree(out)
            continue
        assert code == -signal.SIGKILL
        kills += 1
    assert main(_args(study, out)) == 0
    _assert_same_run(out, reference)
    assert time.monotonic() - started < 120
