"""The run directory's names: one of each, and the groups clearing and claiming use are consistent."""

from __future__ import annotations

from harness.rundir import names


def test_every_name_is_distinct_and_every_output_is_a_harness_name() -> None:
    top = [value for key, value in vars(names).items() if key.isupper() and isinstance(value, str)]
    cell = sorted(names.CELL_FILES)
    assert len(set(names.HARNESS_NAMES)) == len(names.HARNESS_NAMES)
    assert set(names.OUTPUTS) <= set(names.HARNESS_NAMES) and set(names.RUN_SUMMARIES) <= set(names.OUTPUTS)
    assert names.CACHE not in names.OUTPUTS  # --fresh keeps the decoded-image cache (keyed by content)
    assert set(top) - set(names.HARNESS_NAMES) - set(cell) == set()  # no name the manifest would not list


def test_a_cell_folder_is_named_by_repeat_and_fold() -> None:
    assert names.cell_name(0, 3) == "r0-f3" and names.cell_name(12, 0) == "r12-f0"
