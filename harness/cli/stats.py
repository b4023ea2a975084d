"""``harness compare`` and ``harness plan``: their arguments and what they print."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

from harness import rundir as files
from harness.errors import HarnessError
from harness.rundir import RunDir

if TYPE_CHECKING:
    from harness.cli.options import CompareCommand, PlanCommand
    from harness.stats.power import DesignOption


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the ``compare`` and ``plan`` subcommands."""
    compare = sub.add_parser("compare", help="each arm vs the baseline with tests valid for the metric and design")
    compare.add_argument("run_dir", type=Path)
    compare.add_argument("--baseline", help="default: the study's compare.baseline, else the first arm")
    compare.add_argument("--metric", help="default: the study's compare.metric (test_* = the held-out test set)")
    compare.add_argument("--alpha", type=float, help="default: the study's compare.alpha (0.05)")
    compare.add_argument("--rope", type=float, help="region of practical equivalence; default: the study's (0.01)")
    compare.add_argument("--json", action="store_true")
    compare.add_argument("--write", action="store_true", help="also (over)write stats.json in the run directory")

    plan = sub.add_parser("plan", help="a study file: its projected wall time; a finished run: which folds x repeats "
                                       "detect a given difference (80 %% power) and how long each takes")
    plan.add_argument("run_dir", type=Path, metavar="STUDY_OR_RUN_DIR",
                      help="a study file (measures a short slice of each arm), or a finished run (its per-fold "
                           "differences give the noise level, its cells' times the cost)")
    plan.add_argument("--effect", type=float, help="with a run: the difference to detect, in metric units (0.01 = 1 point)")
    plan.add_argument("--baseline")
    plan.add_argument("--metric", help="a cross-validation metric; default: the study's compare.metric")
    plan.add_argument("--alpha", type=float)
    plan.add_argument("--steps", type=int, default=5, help="with a study: timed training steps per arm (default 5)")
    plan.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="with a study: override a study key, as for harness run")
    plan.add_argument("--json", action="store_true", help="with a study: projected_seconds, low, high and per-arm figures")


def cmd_compare(args: CompareCommand) -> int:
    from harness.run.analysis import compare_run, is_multi_run, write_stats
    from harness.stats.compare import format_comparison

    if is_multi_run(args.run_dir):
        from harness.cli.multi import cmd_compare_multi

        return cmd_compare_multi(args)
    from harness.run.analysis import is_settings_run

    if is_settings_run(args.run_dir):
        from harness.cli.multi import cmd_compare_settings

        return cmd_compare_settings(args)

    comparison = compare_run(args.run_dir, baseline=args.baseline, metric=args.metric, alpha=args.alpha, rope=args.rope)
    if args.write:
        write_stats(args.run_dir, comparison)
    if not comparison.arms and not args.json:  # the header and the verdict rule alone read as a comparison
        print(f"{args.run_dir}: one arm ({comparison.baseline}): no comparison; a study compares two or more arms")
    print(comparison.to_json() if args.json else format_comparison(comparison))
    return 0


def cmd_plan(args: PlanCommand) -> int:
    from harness.run.analysis import is_multi_run, load_run
    from harness.stats.power import format_plan, plan_designs

    if args.run_dir.is_file() or not args.run_dir.exists():  # a study file, or a shipped study's bare name
        from harness.cli.options import PlanStudyCommand
        from harness.cli.tools import cmd_plan_study
        from harness.shipped import resolve_study

        study = resolve_study(args.run_dir)
        if study.is_file():
            return cmd_plan_study(PlanStudyCommand(study=study, overrides=args.overrides, steps=args.steps,
                                                   json=args.json, strict_plugins=args.strict_plugins, quiet=args.quiet))
        raise HarnessError(f"plan {study}: no such run directory or study file")
    if args.effect is None:
        raise HarnessError(f"plan {args.run_dir}: give --effect (the difference to detect, e.g. 0.01) for a run, "
                           "or a study file for its projected wall time")
    if is_multi_run(args.run_dir):
        raise HarnessError(f"{args.run_dir} is a run over several datasets; plan works on one dataset's folds: "
                           f"harness plan {RunDir(args.run_dir).path_of(files.DATASETS)}/<id> --effect {args.effect:g}")
    from harness.run.analysis import is_settings_run

    if is_settings_run(args.run_dir):
        raise HarnessError(f"{args.run_dir} is a run with several settings; plan works on one setting's folds: "
                           f"harness plan {RunDir(args.run_dir).path_of(files.SETTINGS)}/<id> --effect {args.effect:g}")
    run = load_run(args.run_dir, baseline=args.baseline, metric=args.metric, alpha=args.alpha)
    if run.metric.on_test:
        raise HarnessError(f"plan works on cross-validation scores; {run.metric.column} is a held-out test metric "
                           "(its precision depends on the test set's size, not on folds or repeats)")
    if not (math.isfinite(args.effect) and args.effect > 0):
        raise HarnessError(f"--effect must be a positive difference in metric units (e.g. 0.01), got {args.effect}")
    if len(run.arms) < 2:  # nothing would be printed: no difference to size a design for
        raise HarnessError(f"plan {args.run_dir}: the run has one arm ({', '.join(run.arms)}); plan sizes the design "
                           "that detects a difference between an arm and the baseline: run a study with two or more arms")
    import numpy as np

    table = run.table()
    for arm in run.arms:
        if arm == run.baseline:
            continue
        pair = table[[arm, run.baseline]].dropna()
        d = (pair[arm] - pair[run.baseline]).to_numpy()
        if len(d) < 2 or float(np.std(d, ddof=1)) == 0:
            print(f"{arm} vs {run.baseline}: the per-fold differences have no spread ({len(d)} pair(s)); "
                  "their noise cannot be estimated from this run")
            continue
        sd = float(np.std(d, ddof=1))
        options = plan_designs(sd, run.folds, args.effect, alpha=run.alpha)
        times = _design_times(args.run_dir, run.folds, options)
        print("\n".join(format_plan(arm, run.baseline, run.metric.column, sd, run.folds, run.repeats, args.effect,
                                    options, run.alpha, times)))
    return 0


def _design_times(run_dir: Path, folds: int, options: list[DesignOption]) -> dict[int, str]:
    """Each proposed design's wall time in words, from the run's measured cell times (none without them)."""
    from harness.run.projection import design_seconds, duration

    run = RunDir(run_dir)
    results, info = run.raw_results(), run.run_info()
    if results is None:
        return {}
    times = {o.folds: design_seconds(results, info, folds, o.folds, o.repeats)
             for o in options if o.repeats is not None}
    return {k: f"about {duration(v[0])} ({duration(v[1])} to {duration(v[2])}, from this run's cell times)"
            for k, v in times.items() if v is not None}


def verdict_lines(run_dir: Path) -> str:
    """What ``harness run`` ends with: the verdict per arm (empty for a single arm)."""
    from harness.run.analysis import compare_run
    from harness.stats.compare import format_verdicts

    results = RunDir(run_dir).raw_results()
    if results is None or results["arm"].nunique() < 2:
        return ""
    try:
        return format_verdicts(compare_run(run_dir))
    except HarnessError as exc:
        return f"verdict: not computable ({exc})"
