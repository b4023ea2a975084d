"""Run a study with several datasets or settings: one complete ordinary run per entry (``RUN/datasets/<id>/`` or
``RUN/settings/<id>/``, the same arms and seeds), then the comparison over them (across.json for datasets,
stats.json for settings) and the top-level report. Settings share one decoded-image cache (``RUN/cache``, see
:meth:`RunDir.cache`): they read the same images."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from harness import rundir as files
from harness.registry import Registry
from harness.run.runner import RunOptions, run_lock, run_study
from harness.rundir import RunDir
from harness.study.multi import MultiStudy


def run_multi(multi: MultiStudy, registry: Registry, options: RunOptions) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Each entry's results (id -> results table) and the comparison over the entries."""
    root = RunDir(options.out_dir)
    files.refuse_own_study(multi.source, root.root)
    results: dict[str, pd.DataFrame] = {}
    settings = multi.kind == files.SETTINGS
    created = files.first_missing(root.root)  # removed when the run fails before any cell began
    with run_lock(root.root):
        if options.fresh:
            root.clear(keep=registry.kept_plugin_files())
        root.refuse_other_layout(multi.kind)
        root.remove(files.ACROSS, files.REPORT, files.STATS)  # nothing stale while the entries run
        root.write_study(multi.data)
        word = "setting" if settings else "dataset"
        try:
            for entry_id, study in multi.datasets.items():
                folder = root.sub_run(multi.kind, entry_id)
                if not options.quiet:
                    print(f"{word} {entry_id}: {folder}")
                results[entry_id] = run_study(study, registry, dataclasses.replace(options, out_dir=folder))
        except BaseException:
            if created is not None and not root.has_sub_runs_started(multi.kind):
                files.remove_created(root.root, created)
            raise
        return results, (_settings_outputs if settings else _across_outputs)(multi, options)


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
