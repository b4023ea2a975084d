"""``harness compare`` on a run with several datasets (``datasets:``) or training settings (``settings:`` /
``settings_grid:``)."""

from __future__ import annotations

import json

from harness.cli.options import CompareCommand
from harness.rundir import RunDir


def cmd_compare_multi(args: CompareCommand) -> int:
    """Each dataset's comparison as for one dataset, then the across-dataset verdict."""
    from dataclasses import asdict

    from harness.run.analysis import across_run, compare_run, write_across, write_stats
    from harness.stats.across import format_across
    from harness.stats.compare import format_comparison

    across = across_run(args.run_dir, baseline=args.baseline, metric=args.metric, alpha=args.alpha, rope=args.rope)
    per_dataset = {}
    for dataset_id, sub in RunDir(args.run_dir).dataset_runs().items():
        per_dataset[dataset_id] = compare_run(sub, baseline=across["baseline"], metric=args.metric, alpha=args.alpha,
                                              rope=args.rope)
        if args.write:
            write_stats(sub, per_dataset[dataset_id])
    if args.write:
        write_across(args.run_dir, across)
    if args.json:
        print(json.dumps({"datasets": {k: asdict(c) for k, c in per_dataset.items()}, "across": across},
                         indent=1, default=float))
        return 0
    for dataset_id, comparison in per_dataset.items():
        print(f"== dataset {dataset_id} ==\n{format_comparison(comparison)}\n")
    print(format_across(across))
    return 0


def cmd_compare_settings(args: CompareCommand) -> int:
    """Each setting's comparison as for one run, then the across-settings verdicts, interaction and robustness."""
    from harness.run.analysis import settings_run, write_settings_stats, write_stats
    from harness.stats.compare import format_comparison
    from harness.stats.settings import format_settings, settings_json

    comparisons, analysis = settings_run(args.run_dir, baseline=args.baseline, metric=args.metric, alpha=args.alpha,
                                         rope=args.rope)
    if args.write:
        for setting, sub in RunDir(args.run_dir).setting_runs().items():
            write_stats(sub, comparisons[setting])
        write_settings_stats(args.run_dir, comparisons, analysis)
    if args.json:
        print(json.dumps(settings_json(comparisons, analysis), indent=1, default=float))
        return 0
    for setting, comparison in comparisons.items():
        print(f"== setting {setting} ==\n{format_comparison(comparison)}\n")
    print(format_settings(analysis))
    return 0
