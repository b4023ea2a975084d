"""The run directory's one owner: every file name (:mod:`.names`), the folder's claim, lock and clearing
(:mod:`.directory`), typed atomic reads and writes of its records (:mod:`.records`) and of a cell's files
(:mod:`.cell`). Nobody else composes a path under a run directory or parses its files.

``from harness import rundir as files`` and ``from harness.rundir import RunDir`` are the ways in.
"""

from __future__ import annotations

from harness.rundir.cell import Cell
from harness.rundir.directory import RunDir, first_missing, refuse_own_study, remove_created
from harness.rundir.names import *  # noqa: F403 - every file name
from harness.rundir.names import CELL_FILES, HARNESS_NAMES, OUTPUTS, RUN_SUMMARIES, cell_name
from harness.rundir.records import RunRecords, read_results, read_study

__all__ = ["CELL_FILES", "HARNESS_NAMES", "OUTPUTS", "RUN_SUMMARIES", "Cell", "RunDir", "RunRecords", "cell_name",
           "first_missing", "read_results", "read_study", "refuse_own_study", "remove_created"]
