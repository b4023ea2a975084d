"""What a run calls once its results, stats and hooks are written: the report (the run layer never imports it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.registry import Registry


def report_writer(registry: Registry) -> Callable[[Path], None]:
    """A renderer for ``RunOptions.report`` / ``TuneOptions.report``: the insight data (gates, Grad-CAM, the
    mistakes gallery) computed once and stored, then ``report.html`` from the stored results only."""

    def write(run_dir: Path) -> None:
        from harness.report.insight import write_insight
        from harness.report.render import write_report

        write_insight(run_dir, registry)
        write_report(run_dir, registry)

    return write
