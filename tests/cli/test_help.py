"""Help: every command shows an example and its defaults; shell completion names the subcommands."""

from __future__ import annotations

import argparse

import pytest

from harness.cli.main import _parser, main


def _subparsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found[f"{prefix} {name}".strip()] = child
                found.update(_subparsers(child, f"{prefix} {name}"))
    return found


def test_every_command_help_shows_an_example_and_defaults() -> None:
    commands = _subparsers(_parser())
    assert {"run", "tune", "validate", "compare", "prepare patches", "studies"} <= set(commands)
    for name, sub in commands.items():
        assert "example:\n  harness " in sub.format_help(), name
    assert "(default: 1)" in commands["run"].format_help()  # --workers
    assert "(default: 150)" in commands["prepare patches"].format_help()  # --size, which has no help text
    assert "(default: 0)" in commands["prepare patches"].format_help()  # --seed: 0 is a value, not "unset"
    top = _parser().format_help()
    assert all(f"\n  {code} " in top for code in ("0", "1", "2", "130"))  # the exit codes


def test_bash_completion_names_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--print-completion", "bash"])
    script = capsys.readouterr().out
    assert stop.value.code in (0, None) and "complete" in script
    assert all(name in script for name in ("run", "tune", "compare", "studies", "--attention"))
