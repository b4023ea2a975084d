"""Run a multi-dataset study: one complete ordinary run per dataset (``RUN/datasets/<id>/``, the same arms
and seeds), then the across-dataset comparison (across.json) and the top-level report."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import yaml

from harness import rundir as files
from harness.atomic import atomic_write_text
from harness.registry import Registry
from harness.run.runner import RunOptions, run_lock, run_study
from harness.rundir import RunDir
from harness.study.multi import MultiStudy


def run_multi(multi: MultiStudy, registry: Registry, options: RunOptions) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Each dataset's results (dataset id -> results table) and the across-dataset comparison."""
    from harness.stats.across_run import across_run, write_across

    root = RunDir(options.out_dir)
    files.refuse_own_study(multi.source, root.root)
    results: dict[str, pd.DataFrame] = {}
    created = files.first_missing(root.root)  # removed when the run fails before any cell began
    with run_lock(root.root):
        for name in (files.ACROSS, files.REPORT):
            (root / name).unlink(missing_ok=True)  # nothing stale while the datasets run
        atomic_write_text(root / files.STUDY, yaml.safe_dump(multi.data, sort_keys=False))
        try:
            for dataset_id, study in multi.datasets.items():
                if not options.quiet:
                    print(f"dataset {dataset_id}: {root.dataset(dataset_id)}")
                results[dataset_id] = run_study(study, registry, dataclasses.replace(options, out_dir=root.dataset(dataset_id)))
        except BaseException:
            if created is not None and not any(root.root.glob(f"{files.DATASETS}/*/{files.CELLS}")):
                files.remove_created(root.root, created)
            raise
        c = multi.first.spec.compare
        across = across_run(root.root, baseline=c.baseline, metric=c.metric, alpha=c.alpha, rope=c.rope)
        write_across(root.root, across)
        if options.report:
            from harness.report.across import write_across_report

            write_across_report(root.root, across, multi.name)
    return results, across
