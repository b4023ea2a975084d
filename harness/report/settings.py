"""The top-level report of a run with settings: each setting's verdicts (linking its own report), the interaction
statement, the robustness summary, the clinician's sentence and a sensitivity plot (each arm's score per setting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import rundir as files
from harness.rundir import RunDir


def sensitivity_png(analysis: dict[str, Any]) -> str:
    """Each arm's mean score per setting (x: the settings in study order) with its corrected 95 % interval, as
    base64 PNG; arms are offset a little sideways so their bars do not hide each other."""
    from harness.report.plots import _pyplot, to_png

    plt = _pyplot()
    settings = analysis["settings"]
    arms = list(dict.fromkeys(a for s in settings for a in analysis["scores"][s]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(settings), 3.4))
    for i, arm in enumerate(arms):
        shift = (i - (len(arms) - 1) / 2) * 0.08
        xs, ys, lows, highs = [], [], [], []
        for x, setting in enumerate(settings):
            mean = analysis["scores"][setting].get(arm)
            interval = (analysis["intervals"].get(setting) or {}).get(arm) or {}
            if mean is None:
                continue
            xs.append(x + shift)
            ys.append(mean)
            lows.append(mean - interval.get("low", mean))
            highs.append(interval.get("high", mean) - mean)
        ax.errorbar(xs, ys, yerr=[lows, highs], marker="o", capsize=3, label=arm)
    ax.set_xticks(range(len(settings)), settings, rotation=20 if len(settings) > 4 else 0)
    ax.set_xlabel(analysis["axis"])
    ax.set_ylabel(f"{analysis['metric']} (mean over folds, 95 % corrected CI)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return to_png(fig)


def write_settings_report(run_dir: Path, comparisons: dict[str, Any], analysis: dict[str, Any], study_name: str,
                          out: Path | None = None) -> Path:
    """report.html at the top of a run with settings (or ``out``)."""
    from harness.report.render import _environment

    rows = []
    for setting, sub in RunDir(run_dir).setting_runs().items():
        rows.append({"id": setting, "scores": analysis["scores"].get(setting, {}),
                     "verdicts": [item["per_setting"][setting]["verdict_text"] for item in analysis["arms"]
                                  if setting in item["per_setting"]],  # with the Holm-across-settings note
                     "report": f"{files.SETTINGS}/{setting}/{files.REPORT}" if RunDir(sub).has(files.REPORT) else None})
    arms = list(dict.fromkeys(a for s in analysis["settings"] for a in analysis["scores"][s]))
    robust = {arm: item["robustness"][arm] for item in analysis["arms"] for arm in (analysis["baseline"], item["arm"])
              if arm in item["robustness"]}  # each arm's worst setting and spread (the baseline's from any item)
    html = _environment().get_template("settings.html.j2").render(
        name=study_name, analysis=analysis, arms=arms, settings=rows, robust=robust, plot=sensitivity_png(analysis))
    return RunDir(run_dir).write_report(html, out)


def rewrite_settings_report(run_dir: Path, out: Path | None = None) -> Path:
    """``harness report RUN`` on a run with settings: the across-settings comparison again, rendered (each setting's
    own report: ``harness report RUN/settings/<id>``)."""

    from harness.run.analysis import settings_run

    name = str(RunDir(run_dir).study().get("name", run_dir.name))
    comparisons, analysis = settings_run(run_dir)
    return write_settings_report(run_dir, comparisons, analysis, name, out)
