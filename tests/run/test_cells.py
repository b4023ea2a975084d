"""A cell's bookkeeping: done only with the same fingerprint; a finished cell keeps the weights it was told to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.run.cells import is_done, prune_checkpoints
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
