"""The top-level report of a multi-dataset run: each dataset's verdict (linking its own report) and the
across-dataset comparison, with a critical-difference diagram (Demšar 2006) when there are enough datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import rundir as files
from harness.errors import HarnessError
from harness.rundir import RunDir


def cd_diagram_png(mean_ranks: dict[str, float], critical_difference: float, title: str = "") -> str:
    """Demšar's critical-difference diagram as base64 PNG: arms on the mean-rank axis (1 = best, left), a bar
    joining each group of arms whose mean ranks lie within the critical difference of each other."""
    from harness.report.plots import _pyplot, to_png

    plt = _pyplot()
    order = sorted(mean_ranks, key=mean_ranks.__getitem__)
    k = len(order)
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.3 * k))
    ax.set_xlim(1 - 0.1, k + 0.1)
    ax.set_ylim(0, k + 2)
    ax.axhline(k + 1, color="black", lw=1)
    for r in range(1, k + 1):
        ax.text(r, k + 1.25, str(r), ha="center", va="bottom", fontsize=8)
    ax.plot([1, 1 + critical_difference], [k + 1.8, k + 1.8], color="tab:red", lw=2)
    ax.text(1 + critical_difference / 2, k + 1.9, f"CD = {critical_difference:.2f}", ha="center", fontsize=8)
    for i, arm in enumerate(order):
        rank = mean_ranks[arm]
        ax.plot([rank, rank], [k + 1, k - i], color="grey", lw=0.8)
        ax.text(rank + 0.03, k - i, f"{arm} ({rank:.2f})", va="center", fontsize=8)
    groups: list[tuple[int, int]] = []  # maximal runs of arms within the CD of each other
    for i in range(k):
        j = max(j for j in range(i, k) if mean_ranks[order[j]] - mean_ranks[order[i]] <= critical_difference)
        if j > i and not any(a <= i and j <= b for a, b in groups):
            groups.append((i, j))
    for n, (i, j) in enumerate(groups):
        ax.plot([mean_ranks[order[i]] - 0.03, mean_ranks[order[j]] + 0.03], [k + 0.7 - 0.15 * n] * 2, color="black", lw=3)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return to_png(fig)


def _dataset_rows(run_dir: Path, across: dict[str, Any]) -> list[dict[str, Any]]:
    from harness.run.analysis import compare_run

    rows = []
    for dataset_id, sub in RunDir(run_dir).dataset_runs().items():
        try:
            comparison = compare_run(sub, baseline=across["baseline"], metric=across["metric"], alpha=across["alpha"],
                                     rope=across["rope"])
            verdicts = [item.verdict_text for item in comparison.arms]
        except HarnessError as exc:
            verdicts = [f"not computable ({exc})"]
        rows.append({"id": dataset_id, "scores": across["scores"].get(dataset_id, {}), "verdicts": verdicts,
                     "report": f"{files.DATASETS}/{dataset_id}/{files.REPORT}" if RunDir(sub).has(files.REPORT) else None})
    return rows


def write_across_report(run_dir: Path, across: dict[str, Any], study_name: str, out: Path | None = None) -> Path:
    """report.html at the top of a multi-dataset run (or ``out``)."""
    from harness.report.render import _environment

    fr = across["friedman"]
    diagram = "" if across["cd_diagram"] or "error" in fr else cd_diagram_png(fr["mean_ranks"], fr["critical_difference"],
                                                                              f"mean rank of {across['metric']}")
    arms = list(next(iter(across["scores"].values()), {}))
    html = _environment().get_template("across.html.j2").render(
        name=study_name, across=across, arms=arms, datasets=_dataset_rows(run_dir, across), diagram=diagram)
    return RunDir(run_dir).write_report(html, out)


def rewrite_across_report(run_dir: Path, out: Path | None = None) -> Path:
    """``harness report RUN`` on a multi-dataset run: the across-dataset comparison again, rendered (each
    dataset's own report: ``harness report RUN/datasets/<id>``)."""

    from harness.run.analysis import across_run

    name = str(RunDir(run_dir).study().get("name", run_dir.name))
    return write_across_report(run_dir, across_run(run_dir), name, out)
