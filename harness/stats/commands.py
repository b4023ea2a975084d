"""``harness compare`` and ``harness plan``: their arguments and what they print."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from harness.errors import HarnessError
from harness.run import rundir as files


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

    plan = sub.add_parser("plan", help="which folds x repeats would detect a given difference (80 %% power)")
    plan.add_argument("run_dir", type=Path, help="a finished run: its per-fold differences give the noise level")
    plan.add_argument("--effect", type=float, required=True, help="the difference to detect, in metric units (0.01 = 1 point)")
    plan.add_argument("--baseline")
    plan.add_argument("--metric", help="a cross-validation metric; default: the study's compare.metric")
    plan.add_argument("--alpha", type=float)


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.stats.across_run import is_multi_run
    from harness.stats.compare import compare_run, format_comparison, write_stats

    if is_multi_run(args.run_dir):
        from harness.cli_multi import cmd_compare_multi

        return cmd_compare_multi(args)
    from harness.stats.settings_run import is_settings_run

    if is_settings_run(args.run_dir):
        from harness.cli_multi import cmd_compare_settings

        return cmd_compare_settings(args)

    comparison = compare_run(args.run_dir, baseline=args.baseline, metric=args.metric, alpha=args.alpha, rope=args.rope)
    if args.write:
        write_stats(args.run_dir, comparison)
    print(comparison.to_json() if args.json else format_comparison(comparison))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from harness.stats._runfiles import load_run
    from harness.stats.across_run import is_multi_run
    from harness.stats.power import format_plan, plan_designs

    if is_multi_run(args.run_dir):
        raise HarnessError(f"{args.run_dir} is a run over several datasets; plan works on one dataset's folds: "
                           f"harness plan {args.run_dir / files.DATASETS}/<id> --effect {args.effect:g}")
    from harness.stats.settings_run import is_settings_run

    if is_settings_run(args.run_dir):
        raise HarnessError(f"{args.run_dir} is a run with several settings; plan works on one setting's folds: "
                           f"harness plan {args.run_dir / files.SETTINGS}/<id> --effect {args.effect:g}")
    run = load_run(args.run_dir, baseline=args.baseline, metric=args.metric, alpha=args.alpha)
    if run.metric.on_test:
        raise HarnessError(f"plan works on cross-validation scores; {run.metric.column} is a held-out test metric "
                           "(its precision depends on the test set's size, not on folds or repeats)")
    if not (math.isfinite(args.effect) and args.effect > 0):
        raise HarnessError(f"--effect must be a positive difference in metric units (e.g. 0.01), got {args.effect}")
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
        print("\n".join(format_plan(arm, run.baseline, run.metric.column, sd, run.folds, run.repeats, args.effect,
                                    options, run.alpha)))
    return 0


def verdict_lines(run_dir: Path) -> str:
    """What ``harness run`` ends with: the verdict per arm (empty for a single arm)."""
    import pandas as pd

    from harness.stats.compare import compare_run, format_verdicts

    results = run_dir / files.RESULTS
    if not results.exists() or pd.read_csv(results, usecols=["arm"])["arm"].nunique() < 2:
        return ""
    try:
        return format_verdicts(compare_run(run_dir))
    except HarnessError as exc:
        return f"verdict: not computable ({exc})"
