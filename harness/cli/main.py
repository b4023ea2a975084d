"""The ``harness`` command line. Heavy libraries (torch, timm, optuna) are imported only by the
commands that need them, so ``harness --help`` and ``harness plugins`` start fast."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from harness import __version__
from harness.cli.checks import (
    USER_OS_ERRORS,
    load_study_every_problem,
    load_validated,
    os_error_message,
    registry_for,
    run_directory,
    silence_broken_pipe,
)
from harness.cli.help import (
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    HelpFormatter,
    add_completion,
    finish_help,
)
from harness.cli.stats import add_parsers as add_stats_parsers
from harness.cli.stats import cmd_compare, cmd_plan, verdict_lines
from harness.cli.tools import (
    cmd_bench,
    cmd_list,
    cmd_model,
    cmd_plugins,
    cmd_prepare,
    cmd_report,
    cmd_schema,
    cmd_studies,
)
from harness.errors import HarnessError, Interrupted, StudyError
from harness.logs import console, log, verbosity_level
from harness.pipeline.finish import report_writer
from harness.run.determinism import prepare_environment, worker_env
from harness.run.threads import THREADS_HELP, default_threads, load_warning
from harness.shipped import resolve_study


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description="Declarative, seeded, statistically honest ablation studies for image classifiers.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"ablation-harness {__version__}")
    add_completion(parser)
    # global flags are accepted after the subcommand too (SUPPRESS keeps a value given before it)
    common = argparse.ArgumentParser(add_help=False)
    for target, default in ((parser, None), (common, argparse.SUPPRESS)):
        flags = target.add_argument_group("global options") if target is parser else target
        flags.add_argument("--strict-plugins", action="store_true", default=default or False,
                           help="a plugin that fails to load is an error")
        flags.add_argument("-q", "--quiet", action="store_true", default=default or False,
                           help="warnings and errors only: no progress, no info lines")
        flags.add_argument("-v", "--verbose", action="count", default=default or 0,
                           help="also debug lines (per-epoch progress off a terminal)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser = sub.add_parser
    sub.add_parser = lambda *a, **k: add_parser(*a, parents=[common], **k)  # type: ignore[method-assign]

    run = sub.add_parser("run", help="run every arm of a study on identical seeded folds")
    run.add_argument("study", type=Path, help="a study file, or the name of a shipped study (harness studies)")
    run.add_argument("--out", type=Path, help="run directory (default runs/<name>/)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a study key, e.g. --set training.epochs=2 (repeatable)")
    run.add_argument("--fresh", action="store_true", help="discard earlier results in the run directory")
    run.add_argument("--no-report", action="store_true", help="skip writing report.html")
    run.add_argument("--storage", help="Optuna storage URL: workers sharing it split the cells between them")
    run.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    run.add_argument("--workers", "--parallel", dest="workers", type=int, default=1, metavar="N",
                     help="N worker processes on this machine share the cells (small models do not fill a GPU)")

    tune = sub.add_parser("tune", help="Optuna search (lr, step size, any key) per arm with fold-aware pruning")
    tune.add_argument("study", type=Path, help="a study file, or the name of a shipped study (harness studies)")
    tune.add_argument("--trials", type=int, help="total trials per arm (a rerun adds up to this many)")
    tune.add_argument("--storage", help="Optuna storage URL shared by workers (default sqlite in the run dir)")
    tune.add_argument("--workers", "--parallel", dest="workers", type=int, default=1, metavar="N",
                      help="N worker processes on this machine share the trials (same flag as run's)")
    tune.add_argument("--out", type=Path)
    tune.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    tune.add_argument("--then-run", action="store_true", help="run the study's arms with each arm's best values")
    tune.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)

    validate = sub.add_parser("validate", help="check a study file; every problem at once, with line numbers")
    validate.add_argument("study", type=Path)
    validate.add_argument("--no-data", action="store_true", help="check the study file only, not its dataset")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    plugins = sub.add_parser("plugins", help="list plugins and what they register")
    plugins.add_argument("--json", action="store_true")

    listing = sub.add_parser("list", help="list components of one kind")
    listing.add_argument("kind", choices=["backbones", "attention", "datasets", "schedulers", "optimizers", "loggers"])
    listing.add_argument("pattern", nargs="?", default="*", help="glob, e.g. 'se*'")
    listing.add_argument("--options", action="store_true", help="every option of each component as a Markdown table (from its option model)")

    schema = sub.add_parser("schema", help="the study file's JSON Schema (editor completion; docs/guide/studies.md, Editor completion)")
    schema.add_argument("--out", type=Path, help="write it to this file instead of stdout")
    schema.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="also a study's plugins: module, so its components are known (repeatable)")

    model = sub.add_parser("model", help="parameters, FLOPs and SE ratios of a backbone + attention")
    model.add_argument("backbone")
    model.add_argument("--attention", default="none", help="a name or a YAML mapping, e.g. '{name: se, reduction: 8}'")
    model.add_argument("--classes", type=int, default=1000)
    model.add_argument("--image-size", type=int, default=224)
    model.add_argument("--in-chans", type=int, default=3)
    model.add_argument("--json", action="store_true")

    add_stats_parsers(sub)  # compare, plan

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
    bench.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=True,
                       help="GPU: deterministic kernels, as training.deterministic (default on)")
    bench.add_argument("--augment", action="store_true", help="include the harness's augmentation in its steps")
    bench.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    bench.add_argument("--profile", type=int, default=0, metavar="STEPS",
                       help="also print the torch profiler's busiest operators over STEPS harness steps")
    bench.add_argument("--fuse", type=int, default=0, metavar="K",
                       help="time K cells of the model one after another against the same K fused into one (torch.func)")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    report = sub.add_parser("report", help="re-render report.html from a finished run (no retraining); two runs: side by side")
    report.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    report.add_argument("--out", type=Path)
    report.add_argument("--trust-plugins", action="store_true",
                        help="import the plugin modules the run's study.yaml names (they are code: only runs you trust)")

    studies = sub.add_parser("studies", help="list the example studies shipped with the package, or copy them out")
    studies.add_argument("--copy", type=Path, metavar="DIR", help="copy every shipped study into DIR")
    finish_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    prepare_environment()  # CUBLAS_WORKSPACE_CONFIG before CUDA starts (training.deterministic)
    try:
        args = _parser().parse_args(argv)
    except SystemExit:  # --help, --print-completion, a usage error: what argparse printed may meet a closed pipe
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            silence_broken_pipe()
        raise
    except BrokenPipeError:
        silence_broken_pipe()
        return 0
    with console(verbosity_level(args.quiet, args.verbose)):
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    """Run the command; user errors, interrupts and a closed pipe become a message and an exit code."""
    try:
        if isinstance(getattr(args, "study", None), Path):  # a bare name (quickstart) runs a shipped study
            args.study = resolve_study(args.study)
        code = COMMANDS[args.command](args) or 0
        sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored" at interpreter exit
        return code
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
    except BrokenPipeError:  # the reader went away (| head): not an error of ours or the user's
        silence_broken_pipe()
        return 0
    except OSError as exc:
        if exc.errno not in USER_OS_ERRORS:
            raise
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.pipeline.validate import validate_study
    from harness.study.multi import declares_datasets
    from harness.study.settings import declares_settings

    if declares_datasets(args.study) or declares_settings(args.study):
        from harness.cli.multi import cmd_validate_multi

        return cmd_validate_multi(args)

    study = load_study_every_problem(args)
    notes = validate_study(study, registry_for(args, study.spec.plugins), data=not args.no_data)
    print("".join(f"  {note}\n" for note in notes), end="")
    from harness.pipeline.validate_data import NOT_CHECKED

    checked = "not checked" if args.no_data else ("checked by harness run" if any(n.startswith(NOT_CHECKED) for n in notes)
                                                  else "checked")
    print(f"{args.study}: OK ({len(study.arms)} arm(s): {', '.join(study.arms)}; data {checked})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness.run.runner import RunOptions, run_study
    from harness.study.multi import declares_datasets
    from harness.study.settings import declares_settings

    if declares_datasets(args.study) or declares_settings(args.study):
        from harness.cli.multi import cmd_run_multi

        return cmd_run_multi(args)

    study, registry = load_validated(args)
    out = run_directory(args.out or Path("runs") / study.name)
    if busy := load_warning(study.spec.training.threads or default_threads(args.workers), args.workers):
        log.warning(busy)
    from harness.rundir import refuse_own_study

    refuse_own_study(study.source, out)
    if args.fresh and (args.workers > 1 or args.storage):  # start over before any worker starts
        from harness.run.runner import run_lock
        from harness.rundir import RunDir

        with run_lock(out):
            RunDir(out).clear(keep=registry.kept_plugin_files())
    if args.workers > 1:
        args.storage = _parallel_workers(args, out, study.spec.training.threads, args.storage)
        study, registry = load_validated(args)  # with the per-worker thread count
    options = RunOptions(out, fresh=args.fresh and not args.storage, quiet=args.quiet,
                         report=None if args.no_report else report_writer(registry))
    if args.storage:
        from harness.run.distributed import run_with_storage

        results = run_with_storage(study, registry, options, args.storage)
        for worker in getattr(args, "extra_workers", []):
            worker.wait()
    else:
        results = run_study(study, registry, options)
    from harness.report.answer import run_summary
    from harness.report.insight import flat_gate_sentences, read_insight

    print(run_summary(results, study.spec.compare.metric))
    print(verdict_lines(out) or "(one arm: no comparison)")
    print("".join(f"{line}\n" for line in flat_gate_sentences(read_insight(out))), end="")
    print(f"results: {out / 'results.csv'}" + ("" if args.no_report else f"\nreport:  {out / 'report.html'}"))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from harness.run.runner import RunOptions, run_study
    from harness.study.loader import load_study
    from harness.study.multi import declares_datasets
    from harness.tuning.protocols import best_overrides, tune_study
    from harness.tuning.search import TuneOptions

    if declares_datasets(args.study):
        raise HarnessError(f"{args.study} lists several datasets (datasets:); tuning runs on one: tune a copy of the "
                           "study with one of them as dataset:, then put the values found into training:")
    from harness.study.settings import declares_settings

    if declares_settings(args.study):
        raise HarnessError(f"{args.study} declares settings (settings:/settings_grid:); tuning searches one "
                           "training: tune a copy without the settings, or list the values to compare as settings")
    if args.trials is not None and args.trials < 1:  # before any worker starts
        raise HarnessError(f"--trials must be at least 1 (got {args.trials}): it is the total number of trials per arm")
    study, registry = load_validated(args)
    out = run_directory(args.out or Path("runs") / study.name)
    from harness.rundir import RunDir, refuse_own_study

    refuse_own_study(study.source, out)
    RunDir(out).prepare()  # a folder of the user's is refused before tuning writes into it
    if args.workers > 1:
        _tune_workers(args, out, study.spec.training.threads)
    options = TuneOptions(out, trials=args.trials, storage=args.storage, quiet=args.quiet, report=report_writer(registry))
    from harness.logs import run_log
    from harness.rundir import LOG

    with run_log(out / LOG):
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
        run_study(tuned, registry, RunOptions(out, quiet=args.quiet, report=report_writer(registry)))
        print(f"report: {out / 'report.html'}")
    return 0


def _spawn_workers(args: argparse.Namespace, command: str, out: Path, storage: str, count: int, *extra: str) -> None:
    """Start ``count`` quiet worker processes of ``harness COMMAND`` on one storage (this process is one more)."""
    import subprocess

    line = [*worker_python(), "-m", "harness.cli", command, str(args.study), "--out", str(out), "--storage", storage,
            "--quiet", *extra, *[a for o in args.overrides for a in ("--set", o)],
            *(["--strict-plugins"] if args.strict_plugins else [])]
    # this process's import path (workers start with -P: the working directory is never on it); on several GPUs,
    # one GPU each (round robin)
    path = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    envs = [worker_env(index, {**os.environ, **path}) for index in range(1, count + 1)]
    args.extra_workers = [subprocess.Popen(line, stdout=subprocess.DEVNULL, env=env) for env in envs]


def worker_python() -> list[str]:
    """How a worker process starts Python: ``-P`` keeps the working directory off its path, and PYTHONPATH
    (set by the caller) is this process's path, so a worker imports exactly the modules this process would."""
    return [sys.executable, "-P"]


def _tune_workers(args: argparse.Namespace, out: Path, study_threads: int | None) -> None:
    """``tune --workers N``: N - 1 extra workers on the same storage; the threads split between them unless set."""
    args.storage = args.storage or f"sqlite:///{out / 'tuning.db'}"
    args.overrides += [] if study_threads else [f"training.threads={default_threads(args.workers)}"]
    _spawn_workers(args, "tune", out, args.storage, args.workers - 1,
                   *(["--trials", str(args.trials)] if args.trials else []))


def _parallel_workers(args: argparse.Namespace, out: Path, threads: int | None, storage: str | None) -> str:
    """Start ``--workers N`` - 1 extra workers on ``storage`` (default: SQLite in the run directory);
    this process is one. Unless the study sets training.threads, the CPU threads are split between them."""
    from harness.rundir import RunDir

    RunDir(out).prepare()  # claimed before any worker starts (a folder of the user's is refused)
    storage = storage or f"sqlite:///{out / 'cells.db'}"
    if threads is None:
        args.overrides = [*args.overrides, f"training.threads={default_threads(args.workers)}"]
    _spawn_workers(args, "run", out, storage, args.workers - 1, "--no-report")
    return storage


COMMANDS = {"studies": cmd_studies, "run": cmd_run, "tune": cmd_tune, "validate": cmd_validate, "plugins": cmd_plugins,
            "list": cmd_list, "model": cmd_model, "compare": cmd_compare, "plan": cmd_plan, "prepare": cmd_prepare,
            "bench": cmd_bench, "report": cmd_report, "schema": cmd_schema}
