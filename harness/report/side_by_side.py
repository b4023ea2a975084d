"""The side-by-side report of two runs (``harness report RUN_A RUN_B --out cmp.html``): each run's verdict first,
the protocol they share once with only the differing parts per run, then their arms' scores and folds."""

from __future__ import annotations

from pathlib import Path

from harness.atomic import atomic_write_text
from harness.report.insight import flat_gate_sentences, read_insight
from harness.report.render import METRICS, _environment, build_report_data
from harness.rundir import RunDir


def write_comparison(run_a: Path, run_b: Path, out: Path) -> Path:
    """Two runs side by side: each run's verdict first, the protocol they share once (then only what differs per
    run), their arms' scores; paired statistics only when both used identical splits."""
    a, b = build_report_data(run_a, insight=False), build_report_data(run_b, insight=False)
    for run_dir, data in ((run_a, a), (run_b, b)):
        if data.answer is not None:  # the protocol is printed apart: shared once, differing parts per run
            data.answer.gates = flat_gate_sentences(read_insight(run_dir))
            data.answer.question = data.answer.question.replace(f" ({data.protocol})", "").replace(f"{data.protocol}; ", "")
    same_splits = RunDir(run_a).splits_bytes() == RunDir(run_b).splits_bytes()
    notes = [] if same_splits else ["the two runs used different splits: their folds are not paired, so no paired "
                                    "test is made between them; compare means and intervals only"]
    shared = [part for part in a.protocol_parts if part in b.protocol_parts]
    if a.seed == b.seed:
        shared.append(f"seed {a.seed}")
    differing = {name: [p for p in d.protocol_parts if p not in shared] + ([] if a.seed == b.seed else [f"seed {d.seed}"])
                 for name, d in ((run_a.name, a), (run_b.name, b))}
    metrics = list(dict.fromkeys([a.metric, b.metric, *METRICS]))
    html = _environment().get_template("compare.html.j2").render(
        runs=[(run_a.name, a), (run_b.name, b)], metrics=[m for m in metrics if m in METRICS], notes=notes,
        same_splits=same_splits, shared=shared, differing=differing)
    atomic_write_text(out, html)
    return out
