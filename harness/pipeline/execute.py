"""Run a :class:`~harness.pipeline.plan.Plan`: one path for every study. Each entry is one complete ordinary run;
a one-dataset study's single entry runs into the run directory itself, exactly as ``run_study`` does. A study with
several datasets or settings runs each entry into ``RUN/datasets/<id>/`` or ``RUN/settings/<id>/`` (the same arms
and seeds), then, as the last step, the comparison over them (across.json for datasets, stats.json for settings)
and the top-level report. Settings share one decoded-image cache (``RUN/cache``, see :meth:`RunDir.cache`): they
read the same images."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness import rundir as files
from harness.pipeline.plan import Plan
from harness.run.runner import RunOptions, run_lock, run_study
from harness.rundir import RunDir
from harness.study.multi import MultiStudy


@dataclass(frozen=True)
class Outcome:
    """Each entry's results table (by entry id; None for a one-dataset study) and, for several entries, the
    comparison over them (None for one dataset)."""

    results: dict[str | None, pd.DataFrame]
    across: dict[str, Any] | None = None


def run_plan(plan: Plan, options: RunOptions, *, storage: str | None = None) -> Outcome:
    """Run every entry of ``plan``; with several, then the across-entry analysis. ``storage`` (an Optuna storage
    URL that workers share) is for a one-dataset plan only."""
    if plan.kind is None:  # the entry's folder is the run directory: run_study owns it (lock, study.yaml, --fresh)
        return Outcome(_run_entries(plan, options, storage))
    assert plan.multi is not None and storage is None
    root = RunDir(options.out_dir)
    files.refuse_own_study(plan.source, root.root)
    created = files.first_missing(root.root)  # removed when the run fails before any cell began
    with run_lock(root.root):
        if options.fresh:
            root.clear(keep=plan.registry.kept_plugin_files())
        root.refuse_other_layout(plan.kind)
        root.remove(files.ACROSS, files.REPORT, files.STATS)  # nothing stale while the entries run
        root.write_study(plan.multi.data)
        try:
            results = _run_entries(plan, options, None)
        except BaseException:
            if created is not None and not root.has_sub_runs_started(plan.kind):
                files.remove_created(root.root, created)
            raise
        across = (_settings_outputs if plan.kind == files.SETTINGS else _across_outputs)(plan.multi, options)
        return Outcome(results, across)


def _run_entries(plan: Plan, options: RunOptions, storage: str | None) -> dict[str | None, pd.DataFrame]:
    """Each entry run into its folder, one after another."""
    results: dict[str | None, pd.DataFrame] = {}
    word = "setting" if plan.kind == files.SETTINGS else "dataset"
    for entry in plan.entries:
        folder = entry.folder(options.out_dir)
        if entry.id is not None and not options.quiet:
            print(f"{word} {entry.id}: {folder}")
        entry_options = dataclasses.replace(options, out_dir=folder)
        if storage:
            from harness.run.distributed import run_with_storage

            results[entry.id] = run_with_storage(entry.study, plan.registry, entry_options, storage)
        else:
            results[entry.id] = run_study(entry.study, plan.registry, entry_options)
    return results


def _across_outputs(multi: MultiStudy, options: RunOptions) -> dict[str, Any]:
    from harness.run.analysis import across_run, write_across

    c = multi.first.spec.compare
    across = across_run(options.out_dir, baseline=c.baseline, metric=c.metric, alpha=c.alpha, rope=c.rope)
    write_across(options.out_dir, across)
    if options.report:
        from harness.report.across import write_across_report

        write_across_report(options.out_dir, across, multi.name)
    return across


def _settings_outputs(multi: MultiStudy, options: RunOptions) -> dict[str, Any]:
    from harness.run.analysis import settings_run, write_settings_stats

    c = multi.first.spec.compare
    comparisons, analysis = settings_run(options.out_dir, baseline=c.baseline, metric=c.metric, alpha=c.alpha, rope=c.rope)
    write_settings_stats(options.out_dir, comparisons, analysis)
    if options.report:
        from harness.report.settings import write_settings_report

        write_settings_report(options.out_dir, comparisons, analysis, multi.name)
    return analysis
