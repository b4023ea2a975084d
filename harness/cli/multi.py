"""``harness run``, ``validate`` and ``compare`` on a study with several datasets (``datasets:``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli.checks import registry_for, run_directory
from harness.errors import HarnessError, Problem, StudyError
from harness.pipeline.finish import report_writer


def _load(args: argparse.Namespace, *, data: bool):  # type: ignore[no-untyped-def]
    """The multi-dataset study, its registry and notes; every dataset checked, problems with their dataset's id."""
    from harness.pipeline.validate import validate_study
    from harness.run.threads import threads_flag
    from harness.study.multi import load_multi, prefixed

    threads_flag(args)
    multi = load_multi(args.study, args.overrides)
    registry = registry_for(args, multi.first.spec.plugins)
    found: dict[str, list[Problem]] = {}
    notes: list[str] = []
    for dataset_id, study in multi.datasets.items():
        try:
            notes += [f"{dataset_id}: {note}" for note in validate_study(study, registry, data=data)]
        except StudyError as exc:
            found[dataset_id] = exc.problems
    if found:
        raise StudyError(prefixed(found, len(multi.datasets)))
    return multi, registry, notes


def cmd_validate_multi(args: argparse.Namespace) -> int:
    multi, _, notes = _load(args, data=not args.no_data)
    print("".join(f"  {note}\n" for note in notes), end="")
    arms = multi.first.arms
    print(f"{args.study}: OK ({len(multi.datasets)} datasets: {', '.join(multi.datasets)}; {len(arms)} arm(s): "
          f"{', '.join(arms)}; data {'not ' * args.no_data}checked)")
    return 0


def cmd_run_multi(args: argparse.Namespace) -> int:
    from harness.pipeline.multi import run_multi
    from harness.run.runner import RunOptions
    from harness.stats.across import format_across

    if args.workers > 1 or args.storage:
        raise HarnessError("--workers/--storage are not available for a study with several datasets (datasets:); "
                           "its datasets run one after another in this process: drop the flag")
    multi, registry, _ = _load(args, data=False)
    out = run_directory(args.out or Path("runs") / multi.name)
    options = RunOptions(out, fresh=args.fresh, quiet=args.quiet, report=None if args.no_report else report_writer(registry))
    results, across = run_multi(multi, registry, options)
    from harness.report.answer import run_summary
    from harness.report.insight import flat_gate_sentences, read_insight
    from harness.rundir import RunDir

    for dataset_id, table in results.items():
        print(f"dataset {dataset_id}:\n{run_summary(table, across['metric'])}")
        print("".join(f"{line}\n" for line in flat_gate_sentences(read_insight(RunDir(out).dataset(dataset_id)))), end="")
    print(format_across(across))
    print(f"across datasets: {out / 'across.json'}" + ("" if args.no_report else f"\nreport:  {out / 'report.html'}"))
    return 0


def cmd_compare_multi(args: argparse.Namespace) -> int:
    """Each dataset's comparison as for one dataset, then the across-dataset verdict."""
    from dataclasses import asdict

    from harness.rundir import RunDir
    from harness.stats.across import format_across
    from harness.stats.across_run import across_run, write_across
    from harness.stats.compare import compare_run, format_comparison, write_stats

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
