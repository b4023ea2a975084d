"""Each command's options are one frozen object built from the parsed arguments."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from harness.cli.options import RunCommand
from harness.errors import HarnessError


def _args(**values: object) -> argparse.Namespace:
    base = {"study": Path("my.yaml"), "out": None, "overrides": ["training.epochs=1"], "fresh": False,
            "no_report": False, "storage": None, "threads": None, "workers": 1, "quiet": True, "strict_plugins": False}
    return argparse.Namespace(**{**base, **values})


def test_a_command_is_frozen_and_lists_become_tuples() -> None:
    command = RunCommand.from_args(_args())
    assert command.overrides == ("training.epochs=1",) and command.quiet
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.workers = 2  # type: ignore[misc]
    assert dataclasses.replace(command, workers=2).workers == 2 and command.workers == 1


def test_threads_are_checked_and_a_shipped_name_is_resolved() -> None:
    with pytest.raises(HarnessError, match="--threads must be at least 1"):
        RunCommand.from_args(_args(threads=0))
    shipped = RunCommand.from_args(_args(study=Path("quickstart"))).study
    assert shipped.name == "quickstart.yaml" and shipped.is_file()


@pytest.mark.parametrize("flag", ["workers", "steps"])
def test_counts_below_one_are_refused(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Old code ran `run --workers 0` (or -3) as one worker and `bench --steps 0` as 5 steps, without a word."""
    from harness.cli.main import main
    from harness.cli.options import BenchCommand

    with pytest.raises(HarnessError, match=f"--{flag} must be at least 1, got 0"):
        (RunCommand if flag == "workers" else BenchCommand).from_args(_args(**{flag: 0}))

    assert main(["bench", "--backbone", "resnet20", "--image-size", "32", "--steps", "0"] if flag == "steps"
                else ["run", "my.yaml", "--workers", "-3"]) == 2
    assert "must be at least 1" in capsys.readouterr().err
