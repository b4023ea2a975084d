"""``harness run``, ``validate`` and ``compare`` on a study with several datasets (``datasets:``) or training
settings (``settings:`` / ``settings_grid:``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli.checks import registry_for, run_directory
from harness.errors import HarnessError, Problem, StudyError
from harness.pipeline.finish import report_writer
from harness.rundir import RunDir


def _load(args: argparse.Namespace, *, data: bool):  # type: ignore[no-untyped-def]
    """The multi-dataset (or settings) study, its registry and notes; every entry checked, problems with its id."""
    from harness.pipeline.validate import validate_study
    from harness.run.threads import threads_flag
    from harness.study.multi import load_multi, prefixed
    from harness.study.settings import declares_settings, load_settings
    from harness.study.settings import prefixed as settings_prefixed

    threads_flag(args)
    with_settings = declares_settings(args.study)
    multi = (load_settings if with_settings else load_multi)(args.study, args.overrides)
    registry = registry_for(args, multi.first.spec.plugins)
    found: dict[str, list[Problem]] = {}
    notes: list[str] = []
    for dataset_id, study in multi.datasets.items():
        try:
            notes += [f"{dataset_id}: {note}" for note in validate_study(study, registry, data=data)]
        except StudyError as exc:
            found[dataset_id] = exc.problems
    if found:
        raise StudyError((settings_prefixed if with_settings else prefixed)(found, len(multi.datasets)))
    return multi, registry, notes


def cmd_validate_multi(args: argparse.Namespace) -> int:
    multi, _, notes = _load(args, data=not args.no_data)
    print("".join(f"  {note}\n" for note in notes), end="")
    arms = multi.first.arms
    print(f"{args.study}: OK ({len(multi.datasets)} {multi.kind}: {', '.join(multi.datasets)}; {len(arms)} arm(s): "
          f"{', '.join(arms)}; data {'not ' * args.no_data}checked)")
    return 0


def cmd_run_multi(args: argparse.Namespace) -> int:
    from harness.pipeline.multi import run_multi
    from harness.run.runner import RunOptions
    from harness.stats.across import format_across

    if args.workers > 1 or args.storage:
        raise HarnessError("--workers/--storage are not available for a study with several datasets or settings; "
                           "its sub-runs run one after another in this process: drop the flag")
    multi, registry, _ = _load(args, data=False)
    out = run_directory(args.out or Path("runs") / multi.name)
    options = RunOptions(out, fresh=args.fresh, quiet=args.quiet, report=None if args.no_report else report_writer(registry))
    results, across = run_multi(multi, registry, options)
    from harness.report.answer import run_summary
    from harness.report.insight import flat_gate_sentences, read_insight

    word = "setting" if multi.kind == "settings" else "dataset"
    metric = multi.first.spec.compare.metric
    for entry_id, table in results.items():
        print(f"{word} {entry_id}:\n{run_summary(table, metric)}")
        print("".join(f"{line}\n" for line in flat_gate_sentences(read_insight(RunDir(out).sub_run(multi.kind, entry_id)))), end="")
    if word == "setting":
        from harness.stats.settings import format_settings

        print(format_settings(across))
        print(f"across settings: {out}/stats.json" + ("" if args.no_report else f"\nreport:  {out}/report.html"))
        return 0
    print(format_across(across))
    print(f"across datasets: {out}/across.json" + ("" if args.no_report else f"\nreport:  {out}/report.html"))
    return 0


def cmd_compare_multi(args: argparse.Namespace) -> int:
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


def cmd_compare_settings(args: argparse.Namespace) -> int:
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
