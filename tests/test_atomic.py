"""Atomic writes: a reader sees the old file or the new one, never half; a failed write leaves no temp file."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.atomic import atomic_write, atomic_write_text, remove_temp_leftovers, temp_target


def test_a_failed_write_keeps_the_previous_version_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "results.csv"
    atomic_write_text(target, "old\n")

    def half_then_fail(stream) -> None:  # type: ignore[no-untyped-def]
        stream.write(b"new, half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert [p.name for p in target.parent.iterdir()] == ["results.csv"]


def test_only_the_temp_files_of_the_named_targets_are_removed(tmp_path: Path) -> None:
    kept = ["results.csv", ".hidden", "notes.tmp", ".results.csv.tmp"]  # user files and near-misses stay
    leftovers = [".results.csv.abcd1234.tmp", ".stats.json.x_y9zz00.tmp"]
    for name in kept + leftovers:
        (tmp_path / name).write_text("x")
    assert temp_target(leftovers[0]) == "results.csv" and temp_target("notes.tmp") is None
    assert remove_temp_leftovers(tmp_path, frozenset({"results.csv"})) == 1
    assert remove_temp_leftovers(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
