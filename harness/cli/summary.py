"""What ``harness run`` prints at its end: one dataset's results and verdicts, or each entry's and the comparison
over several datasets or settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness import rundir as files
from harness.rundir import RunDir

if TYPE_CHECKING:
    from harness.pipeline.execute import Outcome
    from harness.pipeline.plan import Plan


def print_outcome(plan: Plan, outcome: Outcome, out: Path, *, report: bool) -> None:
    """The run's summary: each entry's table and flat-gate sentences; the verdicts of one dataset, or the
    comparison over several datasets or settings; where the results and the report are."""
    from harness.cli.stats import verdict_lines
    from harness.report.answer import run_summary
    from harness.report.insight import flat_gate_sentences, read_insight

    metric = plan.first.spec.compare.metric
    where = RunDir(out).path_of
    report_line = f"\nreport:  {where(files.REPORT)}" if report else ""
    if plan.kind is None:
        print(run_summary(outcome.results[None], metric))
        print(verdict_lines(out) or "(one arm: no comparison)")
        print("".join(f"{line}\n" for line in flat_gate_sentences(read_insight(out))), end="")
        print(f"results: {where(files.RESULTS)}{report_line}")
        return
    assert outcome.across is not None  # several entries: the comparison over them
    word = "setting" if plan.kind == "settings" else "dataset"
    for entry in plan.entries:
        print(f"{word} {entry.id}:\n{run_summary(outcome.results[entry.id], metric)}")
        print("".join(f"{line}\n" for line in flat_gate_sentences(read_insight(entry.folder(out)))), end="")
    if word == "setting":
        from harness.stats.settings import format_settings

        print(format_settings(outcome.across))
        print(f"across settings: {where(files.STATS)}{report_line}")
        return
    from harness.stats.across import format_across

    print(format_across(outcome.across))
    print(f"across datasets: {where(files.ACROSS)}{report_line}")
