"""The ``harness`` command line. Heavy libraries (torch, timm, optuna) are imported only by the
commands that need them, so ``harness --help`` and ``harness plugins`` start fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.cli.checks import (
    USER_OS_ERRORS,
    os_error_message,
    refuse_several_entries,
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
from harness.cli.options import (
    BenchCommand,
    Command,
    CompareCommand,
    ListCommand,
    ModelCommand,
    PlanCommand,
    PluginsCommand,
    PrepareCommand,
    ReportCommand,
    RunCommand,
    SchemaCommand,
    StudiesCommand,
    TuneCommand,
    ValidateCommand,
)
from harness.cli.stats import add_parsers as add_stats_parsers
from harness.cli.stats import cmd_compare, cmd_plan
from harness.cli.summary import print_outcome
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
from harness.cli.workers import check_workers, spawn_workers, stop_with_command
from harness.errors import HarnessError, Interrupted, StudyError
from harness.logs import console, log, verbosity_level
from harness.pipeline.finish import report_writer
from harness.run.determinism import prepare_environment
from harness.run.threads import THREADS_HELP, default_threads, load_warning

if TYPE_CHECKING:
    import subprocess

    from harness.pipeline.plan import Plan


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
    model.add_argument("--attention", help="a name or a YAML mapping, e.g. '{name: se, reduction: 8}' (default: no "
                       "attention, the variant its plugin marks identity)")
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
    bench.add_argument("--attention", help="a name or a YAML mapping (default: no attention)")
    bench.add_argument("--image-size", type=int, default=224)
    bench.add_argument("--batch-size", type=int, default=64)
    bench.add_argument("--steps", type=int, default=50)
    bench.add_argument("--device", default="auto")
    bench.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None)
    bench.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    bench.add_argument("--compile", action="store_true")
    bench.add_argument("--cuda-graph", action="store_true", help="CUDA: the harness step as training.cuda_graph")
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
        command, options = COMMANDS[args.command]
        code = command(options.from_args(args)) or 0
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


def cmd_validate(command: ValidateCommand) -> int:
    from harness.pipeline.plan import make_plan
    from harness.pipeline.validate_data import NOT_CHECKED

    plan = make_plan(command.study, command.overrides, strict_plugins=command.strict_plugins, data=not command.no_data)
    print("".join(f"  {note}\n" for note in plan.notes), end="")
    arms = f"{len(plan.arms)} arm(s): {', '.join(plan.arms)}"
    if plan.kind is not None:
        print(f"{command.study}: OK ({len(plan.entries)} {plan.kind}: {', '.join(plan.ids)}; {arms}; "
              f"data {'not ' * command.no_data}checked)")
        return 0
    checked = "not checked" if command.no_data else ("checked by harness run" if any(n.startswith(NOT_CHECKED) for n in plan.notes)
                                                     else "checked")
    print(f"{command.study}: OK ({arms}; data {checked})")
    return 0


def cmd_run(command: RunCommand) -> int:
    from harness.pipeline.execute import run_plan
    from harness.pipeline.plan import make_plan
    from harness.run.runner import RunOptions

    plan = make_plan(command.study, command.overrides, strict_plugins=command.strict_plugins, threads=command.threads,
                     worker_threads=default_threads(command.workers) if command.workers > 1 else None)
    if plan.kind is not None and (command.workers > 1 or command.storage):
        raise HarnessError("--workers/--storage are not available for a study with several datasets or settings; "
                           "its sub-runs run one after another in this process: drop the flag")
    out = run_directory(command.out or Path("runs") / plan.name)
    storage = command.storage
    workers: list[subprocess.Popen[bytes]] = []
    if plan.kind is None:
        storage, workers = _start_run_workers(command, plan, out)
    options = RunOptions(out, fresh=command.fresh and not storage, quiet=command.quiet,
                         report=None if command.no_report else report_writer(plan.registry))
    with stop_with_command(workers):
        outcome = run_plan(plan, options, storage=storage)
    check_workers(workers, out)
    print_outcome(plan, outcome, out, report=not command.no_report)
    return 0


def _start_run_workers(command: RunCommand, plan: Plan, out: Path) -> tuple[str | None, list[subprocess.Popen[bytes]]]:
    """A one-dataset run: warn on a busy machine; with ``--workers N`` or ``--storage``, start over first when
    ``--fresh``, then start the N - 1 extra workers. The storage the cells go through, and the workers."""
    study = plan.first
    if busy := load_warning(study.spec.training.threads or default_threads(command.workers), command.workers):
        log.warning(busy)
    from harness.rundir import RunDir, refuse_own_study

    refuse_own_study(study.source, out)
    if command.fresh and (command.workers > 1 or command.storage):  # start over before any worker starts
        from harness.run.runner import run_lock

        with run_lock(out):
            RunDir(out).clear(keep=plan.registry.kept_plugin_files())
    if command.workers <= 1:
        return command.storage, []
    RunDir(out).prepare()  # claimed before any worker starts (a folder of the user's is refused)
    storage = command.storage or RunDir(out).cell_queue_url()
    return storage, spawn_workers("run", plan, out, storage, command.workers - 1, "--no-report")


def cmd_tune(command: TuneCommand) -> int:
    from harness.pipeline.plan import make_plan
    from harness.run.runner import RunOptions, run_study
    from harness.study.loader import load_study
    from harness.tuning.protocols import best_overrides, tune_study
    from harness.tuning.search import TuneOptions

    if command.trials is not None and command.trials < 1:  # before any worker starts
        raise HarnessError(f"--trials must be at least 1 (got {command.trials}): it is the total number of trials per arm")
    plan = make_plan(command.study, command.overrides, strict_plugins=command.strict_plugins, threads=command.threads,
                     worker_threads=default_threads(command.workers) if command.workers > 1 else None)
    refuse_several_entries(plan, command.study,
                           datasets="tuning runs on one: tune a copy of the study with one of them as dataset:, then "
                                    "put the values found into training:",
                           settings="tuning searches one training: tune a copy without the settings, or list the "
                                    "values to compare as settings")
    study, registry = plan.first, plan.registry
    out = run_directory(command.out or Path("runs") / study.name)
    from harness.rundir import RunDir, refuse_own_study

    refuse_own_study(study.source, out)
    RunDir(out).prepare()  # a folder of the user's is refused before tuning writes into it
    storage = command.storage
    workers: list[subprocess.Popen[bytes]] = []
    if command.workers > 1:
        storage = storage or RunDir(out).tuning_url()
        workers = spawn_workers("tune", plan, out, storage, command.workers - 1,
                                *(["--trials", str(command.trials)] if command.trials else []))
    options = TuneOptions(out, trials=command.trials, storage=storage, quiet=command.quiet, report=report_writer(registry))
    from harness.logs import run_log

    with run_log(RunDir(out).log_path), stop_with_command(workers):
        summary = tune_study(study, registry, options, list(plan.overrides))
    check_workers(workers, out)
    for arm, info in summary["arms"].items():
        counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(info["counts"].items()))
        best = "none complete" if info["best_value"] is None else f"{info['best_value']:.4f} with {info['best_params']}"
        print(f"{arm}: best {summary['metric']} {best} ({counts})")
    if command.then_run and study.spec.tune is not None and study.spec.tune.nested:
        print(f"nested CV: the outer-fold scores are the comparison (report: {out}/report.html); --then-run is not needed")
    elif command.then_run:
        tuned = load_study(command.study, [*plan.overrides, *best_overrides(summary)], registry.defaults)
        run_study(tuned, registry, RunOptions(out, quiet=command.quiet, report=report_writer(registry)))
        print(f"report: {out}/report.html")
    return 0


# each command, and the frozen options it takes (made once from the parsed arguments)
COMMANDS: dict[str, tuple[Callable[[Any], int], type[Command]]] = {
    "studies": (cmd_studies, StudiesCommand), "run": (cmd_run, RunCommand), "tune": (cmd_tune, TuneCommand),
    "validate": (cmd_validate, ValidateCommand), "plugins": (cmd_plugins, PluginsCommand),
    "list": (cmd_list, ListCommand), "model": (cmd_model, ModelCommand), "compare": (cmd_compare, CompareCommand),
    "plan": (cmd_plan, PlanCommand), "prepare": (cmd_prepare, PrepareCommand), "bench": (cmd_bench, BenchCommand),
    "report": (cmd_report, ReportCommand), "schema": (cmd_schema, SchemaCommand)}
