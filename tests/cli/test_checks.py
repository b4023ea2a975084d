"""The CLI's argument checks: one message for a bad --attention, a quiet end when the reader closes the pipe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli.main import main


@pytest.mark.parametrize("attention", ["[se]", "{name: se"])
def test_model_attention_mistakes_are_one_message(attention: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "resnet20", "--attention", attention]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --attention {attention!r}") and "Traceback" not in err


def test_json_into_head_ends_quietly() -> None:
    pipeline = subprocess.run(f"{sys.executable} -m harness.cli plugins --json | head -c 10", shell=True,
                              capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert pipeline.stdout == "[\n {\n  \"na" and pipeline.stderr == "", pipeline.stderr
    completion = subprocess.run(f"{sys.executable} -m harness.cli --print-completion bash | head -c 10", shell=True,
                                capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert len(completion.stdout) == 10 and completion.stderr == "", completion.stderr  # printed while parsing
