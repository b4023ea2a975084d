"""The ``harness`` command line. Heavy libraries (torch, timm, optuna) are imported only by the
commands that need them, so ``harness --help`` and ``harness plugins`` start fast."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.errors import HarnessError, Interrupted, StudyError
from harness.run.threads import THREADS_HELP, default_threads, threads_flag

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Declarative, seeded, statistically honest ablation studies for image classifiers.")
    parser.add_argument("--version", action="version", version=f"ablation-harness {__version__}")
    parser.add_argument("--strict-plugins", action="store_true", help="a plugin that fails to load is an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run every arm of a study on identical seeded folds")
    run.add_argument("study", type=Path)
    run.add_argument("--out", type=Path, help="run directory (default runs/<name>/)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a study key, e.g. --set training.epochs=2 (repeatable)")
    run.add_argument("--fresh", action="store_true", help="discard earlier results in the run directory")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument("--no-report", action="store_true", help="skip writing report.html")
    run.add_argument("--storage", help="Optuna storage URL: workers sharing it split the cells between them")
    run.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    run.add_argument("--parallel", type=int, default=1, metavar="N",
                     help="N worker processes on this machine share the cells (small models do not fill a GPU)")

    tune = sub.add_parser("tune", help="Optuna search (lr, step size, any key) per arm with fold-aware pruning")
    tune.add_argument("study", type=Path)
    tune.add_argument("--trials", type=int, help="total trials per arm (a rerun adds up to this many)")
    tune.add_argument("--storage", help="Optuna storage URL shared by workers (default sqlite in the run dir)")
    tune.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    tune.add_argument("--out", type=Path)
    tune.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    tune.add_argument("--then-run", action="store_true", help="run the study's arms with each arm's best values")
    tune.add_argument("--quiet", action="store_true")
    tune.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)

    validate = sub.add_parser("validate", help="check a study file; every problem at once, with line numbers")
    validate.add_argument("study", type=Path)
    validate.add_argument("--no-data", action="store_true", help="check the study file only, not its dataset")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    plugins = sub.add_parser("plugins", help="list plugins and what they register")
    plugins.add_argument("--json", action="store_true")

    listing = sub.add_parser("list", help="list components of one kind")
    listing.add_argument("kind", choices=["backbones", "attention", "datasets", "schedulers", "optimizers"])
    listing.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'se*'")
    listing.add_argument("--options", action="store_true", help="datasets: every option as a Markdown table")

    model = sub.add_parser("model", help="parameters, FLOPs and SE ratios of a backbone + attention")
    model.add_argument("backbone")
    model.add_argument("--attention", default="none", help="a name or a YAML mapping, e.g. '{name: se, reduction: 8}'")
    model.add_argument("--classes", type=int, default=1000)
    model.add_argument("--image-size", type=int, default=224)
    model.add_argument("--in-chans", type=int, default=3)
    model.add_argument("--json", action="store_true")

    compare = sub.add_parser("compare", help="significance of each arm vs the baseline (CV-valid tests)")
    compare.add_argument("run_dir", type=Path)
    compare.add_argument("--baseline")
    compare.add_argument("--metric", default="accuracy")
    compare.add_argument("--alpha", type=float, default=0.05)
    compare.add_argument("--rope", type=float, default=0.01, help="region of practical equivalence")
    compare.add_argument("--json", action="store_true")

    prepare = sub.add_parser("prepare", help="preprocess a dataset")
    prepare_sub = prepare.add_subparsers(dest="what", required=True)
    patches = prepare_sub.add_parser("patches", help="tile images into patches, drop mostly-white ones, split off a test set")
    patches.add_argument("src", type=Path)
    patches.add_argument("dst", type=Path)
    patches.add_argument("--size", type=int, default=150)
    patches.add_argument("--max-white", type=float, default=0.5, help="discard patches with more white than this")
    patches.add_argument("--white-level", type=int, default=240, help="gray level counted as white")
    patches.add_argument("--test-fraction", type=float, default=0.2)
    patches.add_argument("--seed", type=int, default=0)
    patches.add_argument("--pattern", default=r"^(?P<label>[^_]+)_", help="label regex for flat folders")

    bench = sub.add_parser("bench", help="harness vs bare-loop throughput (or: bench data STUDY)")
    bench.add_argument("mode", nargs="?", choices=["model", "data"], default="model")
    bench.add_argument("study", nargs="?", type=Path, help="with 'data': the study to measure")
    bench.add_argument("--backbone", default="resnet50")
    bench.add_argument("--attention", default="none", help="a name or a YAML mapping")
    bench.add_argument("--image-size", type=int, default=224)
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--steps", type=int, default=50)
    bench.add_argument("--device", default="auto")
    bench.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None)
    bench.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    bench.add_argument("--compile", action="store_true")
    bench.add_argument("--augment", action="store_true", help="include the harness's augmentation in its steps")
    bench.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    bench.add_argument("--profile", type=int, default=0, metavar="STEPS",
                       help="also print the torch profiler's busiest operators over STEPS harness steps")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    report = sub.add_parser("report", help="re-render report.html from a finished run (no retraining); two runs: side by side")
    report.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    report.add_argument("--out", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except StudyError as exc:
        print(f"{len(exc.problems)} problem(s):", file=sys.stderr)
        print(exc, file=sys.stderr)
        return EXIT_USER_ERROR
    except Interrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _registry(args: argparse.Namespace, modules: Sequence[str] = ()):  # type: ignore[no-untyped-def]
    from harness.registry import load_registry

    return load_registry(modules, strict=args.strict_plugins)


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from harness.study.loader import load_study
    from harness.study.validate import validate_study

    threads_flag(args)

    study = load_study(args.study, args.overrides)
    registry = _registry(args, study.spec.plugins)
    validate_study(study, registry)
    return study, registry


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.study.loader import load_study
    from harness.study.validate import validate_study

    study = load_study(args.study, args.overrides)
    notes = validate_study(study, _registry(args, study.spec.plugins), data=not args.no_data)
    print("".join(f"  {note}\n" for note in notes), end="")
    print(f"{args.study}: OK ({len(study.arms)} arm(s): {', '.join(study.arms)}; data {'not ' * args.no_data}checked)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.runner import RunOptions, run_study

    study, registry = _load(args)
    out = (args.out or Path("runs") / study.name).resolve()
    if args.parallel > 1:
        if args.fresh:
            (out / "cells.db").unlink(missing_ok=True)
        args.storage = args.storage or _parallel_workers(args, out, study.spec.training.threads)
        study, registry = _load(args)  # with the per-worker thread count
    options = RunOptions(out, fresh=args.fresh and not args.storage, quiet=args.quiet, report=not args.no_report)
    if args.storage:
        from harness.run.distributed import run_with_storage

        results = run_with_storage(study, registry, options, args.storage)
        for worker in getattr(args, "extra_workers", []):
            worker.wait()
    else:
        results = run_study(study, registry, options)
    summary = results.groupby("arm", sort=False)[["accuracy", "f1_macro"]].agg(["mean", "std"])
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"results: {out / 'results.csv'}" + ("" if args.no_report else f"\nreport:  {out / 'report.html'}"))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from harness.run.runner import RunOptions, run_study
    from harness.study.loader import load_study
    from harness.tuning.search import TuneOptions, best_overrides, tune_study

    study, registry = _load(args)
    out = (args.out or Path("runs") / study.name).resolve()
    if args.workers > 1:
        _tune_workers(args, out, study.spec.training.threads)
    options = TuneOptions(out, trials=args.trials, storage=args.storage, quiet=args.quiet)
    summary = tune_study(study, registry, options, args.overrides)
    for worker in getattr(args, "extra_workers", []):
        worker.wait()
    for arm, info in summary["arms"].items():
        counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(info["counts"].items()))
        best = "none complete" if info["best_value"] is None else f"{info['best_value']:.4f} with {info['best_params']}"
        print(f"{arm}: best {summary['metric']} {best} ({counts})")
    if args.then_run and study.spec.tune is not None and study.spec.tune.nested:
        print(f"nested CV: the outer-fold scores are the comparison (report: {out / 'report.html'}); --then-run is not needed")
    elif args.then_run:
        tuned = load_study(args.study, [*args.overrides, *best_overrides(summary)])
        run_study(tuned, registry, RunOptions(out, quiet=args.quiet))
        print(f"report: {out / 'report.html'}")
    return 0


def _spawn_workers(args: argparse.Namespace, command: str, out: Path, storage: str, count: int, *extra: str) -> None:
    """Start ``count`` quiet worker processes of ``harness COMMAND`` on one storage (this process is one more)."""
    import subprocess

    line = [sys.executable, "-m", "harness.cli", command, str(args.study), "--out", str(out), "--storage", storage,
            "--quiet", *extra, *[a for o in args.overrides for a in ("--set", o)]]
    args.extra_workers = [subprocess.Popen(line, stdout=subprocess.DEVNULL) for _ in range(count)]


def _tune_workers(args: argparse.Namespace, out: Path, study_threads: int | None) -> None:
    """``tune --workers N``: N - 1 extra workers on the same storage; the threads split between them unless set."""
    args.storage = args.storage or f"sqlite:///{out / 'tuning.db'}"
    args.overrides += [] if study_threads else [f"training.threads={default_threads(args.workers)}"]
    _spawn_workers(args, "tune", out, args.storage, args.workers - 1,
                   *(["--trials", str(args.trials)] if args.trials else []))


def _parallel_workers(args: argparse.Namespace, out: Path, threads: int | None) -> str:
    """Start ``--parallel N`` - 1 extra workers on a SQLite storage in the run directory; this process is one.
    Unless the study sets training.threads, the CPU threads are split between the workers."""
    out.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{out / 'cells.db'}"
    if threads is None:
        args.overrides = [*args.overrides, f"training.threads={default_threads(args.parallel)}"]
    _spawn_workers(args, "run", out, storage, args.parallel - 1, "--no-report")
    return storage


def cmd_plugins(args: argparse.Namespace) -> int:
    from harness.registry import KINDS

    registry = _registry(args)
    rows = []
    for record in registry.plugins:
        provides = {kind: sorted(n for n, owner in registry.owners[kind].items() if owner == record.name)
                    for kind in KINDS}
        rows.append({**vars(record), "registers": {k: v for k, v in provides.items() if v}})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        print(f"{row['name']} {row['version']}  ({row['source']})")
        for kind, names in row["registers"].items():
            print(f"    {kind}: {', '.join(names)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    names = [n for n in registry.names(args.kind) if fnmatch.fnmatch(n, args.pattern)]
    if args.options and args.kind == "datasets":
        from harness.options import options_markdown

        print(options_markdown([(n, getattr(registry.get(args.kind, n), "options", None)) for n in names]))
        return 0
    width = max((len(n) for n in names), default=0)
    for name in names:
        print(f"{name:<{width}}  {registry.get(args.kind, name).summary}")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    import yaml

    from harness.models.build import build_model, model_cost

    registry = _registry(args)
    attention = yaml.safe_load(args.attention)
    name, options = (attention, {}) if isinstance(attention, str) else (attention.pop("name", "none"), attention)
    model = build_model(registry, args.backbone, name, options, num_classes=args.classes,
                        in_chans=args.in_chans, image_size=args.image_size)
    cost = model_cost(model, args.in_chans, args.image_size)
    layers = [{"name": n, "type": type(m).__name__, "params": sum(p.numel() for p in m.parameters())}
              for n, m in model.named_children()]
    stages: dict[str, set[float]] = {}
    for row in cost.attention:
        stages.setdefault(row["module"].split(".")[0], set()).add(row["ratio"])
    if args.json:
        print(json.dumps({"backbone": args.backbone, "params": cost.params, "flops": cost.flops, "layers": layers,
                          "attention": {"name": name, **options, "modules": cost.attention,
                                        "ratio_per_stage": {k: sorted(v) for k, v in stages.items()}}}, indent=1))
        return 0
    print(f"{args.backbone} + {name} {options or ''}")
    print(f"  params {cost.params:,}   FLOPs {cost.flops / 1e9:.3f} G at {args.image_size}x{args.image_size}")
    for layer in layers:
        print(f"  {layer['name']:<14} {layer['type']:<20} {layer['params']:>12,}")
    for stage, ratios in stages.items():
        print(f"  effective SE ratio in {stage}: {', '.join(f'{r:g}' for r in sorted(ratios))}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.stats.compare import compare_run, format_comparison, write_stats

    comparison = compare_run(args.run_dir, baseline=args.baseline, metric=args.metric, alpha=args.alpha, rope=args.rope)
    write_stats(args.run_dir, comparison)
    print(comparison.to_json() if args.json else format_comparison(comparison))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from harness.data.patches import make_patches

    summary = make_patches(args.src, args.dst, size=args.size, max_white=args.max_white, white_level=args.white_level,
                           test_fraction=args.test_fraction, seed=args.seed, pattern=args.pattern)
    print(f"{summary.sources} source images ({summary.test_sources} held out for test): kept {summary.kept} "
          f"patches, discarded {summary.discarded_white} mostly-white ones")
    print(f"dataset: {summary.csv} (use dataset: {{name: csv, options: {{path: ...}}}} and cv.group: source)")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import torch
    import yaml

    torch.set_num_threads(threads_flag(args) or default_threads())
    if args.mode == "data":
        return _bench_data(args)
    from harness.bench import BenchConfig, run_bench

    attention = yaml.safe_load(args.attention)
    name, options = (attention, {}) if isinstance(attention, str) else (attention.pop("name", "none"), attention)
    config = BenchConfig(args.backbone, name, tuple(sorted(options.items())), args.image_size, args.batch_size,
                         args.steps, device=args.device, amp=args.amp, channels_last=args.channels_last,
                         compile=args.compile, augment=args.augment)
    result = run_bench(config, _registry(args), profile_steps=args.profile)
    profile = result.pop("profile", None)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "config"}))
    else:
        print(f"{result['backbone']} + {result['attention']} at {result['image_size']}px, batch {result['batch_size']}, "
              f"{result['device_name']} (amp {result['amp']}, channels_last {result['channels_last']})")
        print(f"  train  harness {result['train_img_s']:.1f} img/s   bare loop {result['bare_train_img_s']:.1f} img/s   "
              f"ratio {result['overhead_ratio']:.3f}   batch preparation {100 * result['data_share']:.1f} % of step time")
        if "attention_ratio" in result:
            print(f"  plain {result['backbone']} (bare loop) {result['plain_train_img_s']:.1f} img/s   "
                  f"{result['attention']} / plain throughput {result['attention_ratio']:.3f}")
        print(f"  infer  {result['infer_img_s']:.1f} img/s   peak memory {result['peak_mem_mb']:.0f} MB")
    if profile:
        print(profile, file=sys.stderr if args.json else sys.stdout)
    return 0


def _bench_data(args: argparse.Namespace) -> int:
    import tempfile

    from harness.bench import data_share
    from harness.run.runner import RunOptions, run_study

    if args.study is None:
        raise HarnessError("harness bench data needs a study file: harness bench data STUDY [--set ...]")
    args.overrides = list(args.overrides)
    study, registry = _load(args)
    with tempfile.TemporaryDirectory() as tmp:
        run_study(study, registry, RunOptions(Path(tmp), quiet=True, report=False))
        rows = data_share(Path(tmp))
    for row in rows:
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{row['arm']}: data preparation = {100 * row['data_share']:.2f} % of training time after epoch 1 "
                  f"({row['epochs_measured']} epochs); images decoded once for the whole study in "
                  f"{row['decode_seconds_for_whole_study']:.2f} s")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.render import write_comparison, write_report

    if len(args.run_dirs) == 1:
        print(write_report(args.run_dirs[0], None, args.out))
    elif len(args.run_dirs) == 2:
        print(write_comparison(args.run_dirs[0], args.run_dirs[1], args.out or Path("comparison.html")))
    else:
        raise HarnessError("harness report takes one run directory, or two to compare")
    return 0


COMMANDS = {"run": cmd_run, "tune": cmd_tune, "validate": cmd_validate, "plugins": cmd_plugins, "list": cmd_list,
            "model": cmd_model, "compare": cmd_compare, "prepare": cmd_prepare, "bench": cmd_bench, "report": cmd_report}

if __name__ == "__main__":
    warnings.simplefilter("default")
    sys.exit(main())
