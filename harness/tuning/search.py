"""``harness tune``: Optuna search over any dotted study key, per arm, on the arm's own k-fold CV.

Pruning understands folds: the Wilcoxon pruner compares a trial's per-fold scores with the best
trial's on the same folds (fold order shuffled per trial); median/hyperband prune on per-epoch
values within folds. Storage is SQLite in the run directory by default, or any Optuna storage
URL shared by many workers; RUNNING trials of a dead worker are failed by the heartbeat and
re-run. ``--trials`` is the total for the study, so a rerun resumes.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.atomic import atomic_write_text
from harness.errors import HarnessError, StudyError
from harness.registry import Registry
from harness.run.trainer import seed_for
from harness.stats.registry import resolve_metric
from harness.study.loader import TUNE_METRICS, LoadedStudy, load_study, set_line
from harness.study.schema import ParamSpec, TuneSpec

HEARTBEAT_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_INTERVAL", "10"))  # seconds between worker heartbeats
GRACE_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_GRACE", "30"))  # silence after which a worker counts as dead
MAX_CONSECUTIVE_FAILURES = 5  # failed trials in a row (in this process) after which tuning stops


@dataclass
class TuneOptions:
    out_dir: Path
    trials: int | None = None
    storage: str | None = None
    quiet: bool = False
    keep_checkpoints: bool = False


def storage_for(url: str | None, run_dir: Path) -> Any:
    """An Optuna storage with heartbeats (so dead workers' trials are re-run): RDB URL or journal file."""
    import warnings

    import optuna
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = url or f"sqlite:///{run_dir / 'tuning.db'}"
    run_dir.mkdir(parents=True, exist_ok=True)
    retry = RetryHeartbeatStaleTrialCallback(max_retry=3)
    if url.startswith("journal:"):
        journal = Path(url.removeprefix("journal:")).expanduser()
        if not journal.parent.is_dir() or journal.is_dir():
            raise HarnessError(f"storage {url!r}: {journal} is not a file in an existing folder; "
                               "use journal:/existing/folder/tuning.log")
        try:
            return JournalStorage(JournalFileBackend(str(journal)))
        except OSError as exc:
            raise HarnessError(f"storage {url!r}: cannot open {journal}: {exc.strerror}") from None
    url = with_postgres_driver(url)
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}  # several local workers wait for the file lock instead of failing
    try:
        return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                          heartbeat_stale_trial_callback=retry, engine_kwargs=engine)
    except (ImportError, ModuleNotFoundError) as exc:
        hint = "pip install 'ablation-harness[postgres]'" if url.startswith("postgresql") else "install its driver"
        raise HarnessError(f"storage {url!r} needs a database driver: {exc} ({hint})") from None
    except optuna.exceptions.StorageInternalError as exc:
        raise HarnessError(f"cannot open storage {url!r}: {exc}") from None
    except Exception as exc:  # sqlalchemy's URL/connection errors
        raise HarnessError(f"cannot open storage {url!r}: {type(exc).__name__}: {exc}") from None


def with_postgres_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.1 defaults to psycopg 3, while the
    ``postgres`` extra (and many systems) provide psycopg2. An explicit ``postgresql+driver://`` is kept."""
    import importlib.util

    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    raise HarnessError(f"storage {url!r} needs a PostgreSQL driver: pip install 'ablation-harness[postgres]' "
                       "(psycopg2-binary) or psycopg[binary]")


def _sampler(tune: TuneSpec, seed: int) -> Any:
    import optuna

    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if tune.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if tune.sampler == "grid":
        grid = {}
        for key, p in tune.space.items():
            if p.choices is not None:
                grid[key] = p.choices
            elif p.is_int:
                grid[key] = list(range(int(p.low or 0), int(p.high or 0) + 1, int(p.step or 1)))
            elif p.step is not None:
                count = int(round(((p.high or 0) - (p.low or 0)) / p.step)) + 1
                grid[key] = [(p.low or 0) + i * p.step for i in range(count)]
            else:
                raise HarnessError(f"tune.space.{key}: the grid sampler needs choices or a step")
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(tune: TuneSpec) -> Any:
    import optuna

    return {
        "wilcoxon": lambda: optuna.pruners.WilcoxonPruner(p_threshold=tune.wilcoxon_p, n_startup_steps=2),
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[tune.pruner]()


def suggest(trial: Any, key: str, param: ParamSpec) -> Any:
    if param.choices is not None:
        return trial.suggest_categorical(key, param.choices)
    if param.is_int:
        return trial.suggest_int(key, int(param.low or 0), int(param.high or 0), step=int(param.step or 1), log=param.log)
    return trial.suggest_float(key, float(param.low or 0), float(param.high or 0), step=param.step, log=param.log)


def arm_overrides(arm: str, params: dict[str, Any]) -> list[str]:
    """``--set`` lines that give one arm the values: training.* per arm, other keys study-wide."""
    lines = []
    for key, value in params.items():
        target = f"arms.{arm}.{key}" if key.startswith("training.") else key
        lines.append(set_line(target, value))
    return lines


class ArmObjective:
    """One trial: the arm's k-fold CV with the suggested values; reports for fold-aware pruning."""

    def __init__(self, study: LoadedStudy, registry: Registry, arm: str, options: TuneOptions, overrides: list[str],
                 subset: Any = None, trials_dir: Path | None = None):
        assert study.spec.tune is not None
        self.study, self.registry, self.arm, self.options = study, registry, arm, options
        self.subset = subset
        self.trials_dir = trials_dir or options.out_dir / "tuning" / arm
        self.tune = study.spec.tune
        self.base_overrides = overrides
        self.column = TUNE_METRICS[self.tune.metric]

        self.last_error = ""

    def __call__(self, trial: Any) -> float:
        try:
            return self._trial(trial)
        except HarnessError as exc:
            self.last_error = str(exc)
            raise

    def _trial(self, trial: Any) -> float:
        import optuna

        from harness.run.runner import RunOptions, StudyRunner

        params = {key: suggest(trial, key, p) for key, p in self.tune.space.items()}
        study = load_study(self.study.source, [*self.base_overrides, *arm_overrides(self.arm, params)])
        trial_dir = self.trials_dir / f"trial-{trial.number:04d}"
        n_cells = study.spec.cv.folds * study.spec.cv.repeats
        order = list(range(n_cells))
        random.Random(seed_for(self.study.spec.seed, self.arm, trial.number)).shuffle(order)
        scores: list[float] = []
        epochs = study.arms[self.arm].training.epochs

        def on_cell(arm: Any, fold: Any, result: dict[str, Any]) -> None:
            value = float(result[self.column])
            scores.append(value)
            if self.tune.pruner == "wilcoxon":
                trial.report(value, step=fold.repeat * study.spec.cv.folds + fold.fold)  # step = which fold
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after {len(scores)} of {n_cells} folds")

        def on_epoch(arm: Any, fold: Any, row: dict[str, float]) -> None:
            if self.tune.pruner in ("median", "hyperband"):
                position = order.index(fold.repeat * study.spec.cv.folds + fold.fold)
                value = row["val_loss"] if self.column == "loss" else row["val_accuracy"]
                trial.report(value, step=position * epochs + int(row["epoch"]))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned in fold {position + 1} of {n_cells}, epoch {int(row['epoch'])}")

        runner = StudyRunner(study, self.registry, RunOptions(
            trial_dir, quiet=True, report=False, stats=False, arms=[self.arm], cache_dir=self.options.out_dir / "cache",
            fold_order=order, on_cell=on_cell, on_epoch=on_epoch, subset=self.subset))
        try:
            runner.run()
        finally:
            if not self.options.keep_checkpoints:
                for checkpoint in trial_dir.glob("cells/*/*/*.pt"):
                    checkpoint.unlink()
        trial.set_user_attr("fold_scores", scores)
        return sum(scores) / len(scores)


def tune_study(study: LoadedStudy, registry: Registry, options: TuneOptions, overrides: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Tune every selected arm; write ``tuning.json`` (best values, counts, plots) in the run directory."""
    import optuna

    tune = study.spec.tune
    if tune is None:
        raise HarnessError(f"{study.source}: no 'tune:' section; add one with a search space (see the README)")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are reported by FailureGuard, without a traceback
    from harness.study.validate import tune_space_problems

    problems = tune_space_problems(study, registry)  # before any trial (cmd_tune's validate did it too)
    if problems:
        raise StudyError(problems)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    total = tune.trials if options.trials is None else options.trials
    if total < 1:
        raise HarnessError(f"--trials must be at least 1 (got {total}): it is the total number of trials per arm")
    storage = storage_for(options.storage or tune.storage, options.out_dir)
    direction: Literal["minimize", "maximize"] = resolve_metric(tune.metric, allow_test=False).direction
    summary: dict[str, Any] = {"metric": tune.metric, "direction": direction, "pruner": tune.pruner,
                               "sampler": tune.sampler, "protocol": "", "arms": {}}
    if tune.nested:
        from harness.tuning.nested import nested_tune

        return nested_tune(study, registry, options, list(overrides), storage, total, direction, summary)
    for arm in tune.arms or list(study.arms):
        objective = ArmObjective(study, registry, arm, options, list(overrides))
        optuna_study = optimize_arm(f"{study.name}:{arm}", objective, storage, total, direction, options.quiet)
        summary["arms"][arm] = describe_study(optuna_study)
    summary["protocol"] = (f"{tune.sampler} sampler, {tune.pruner} pruner, {total} trials per arm; each trial is the "
                           f"arm's {study.spec.cv.folds}-fold CV (not nested: the best trial's score is optimistically biased, "
                           "and a --then-run comparison reuses the folds the values were tuned on)")
    atomic_write_text(options.out_dir / "tuning.json", json.dumps(summary, indent=1, default=str))
    return summary


def optimize_arm(name: str, objective: ArmObjective, storage: Any, total: int, direction: Literal["minimize", "maximize"],
                 quiet: bool) -> Any:
    """Run (or resume) one Optuna study until it holds ``total`` complete or pruned trials."""
    import optuna
    from tqdm import tqdm

    tune = objective.tune
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    optuna_study = optuna.create_study(storage=storage, study_name=name, direction=direction,
                                       load_if_exists=True, pruner=_pruner(tune))
    # seeded, and different on each resume so a rerun does not repeat the first suggestions
    optuna_study.sampler = _sampler(tune, seed_for(objective.study.spec.seed, name, len(optuna_study.trials)) % 2**32)
    for fixed in tune.enqueue:
        optuna_study.enqueue_trial(fixed, skip_if_exists=True)
    done = len([t for t in optuna_study.trials if t.state in counted])
    with tqdm(total=total, initial=min(done, total), desc=f"tune {name}", unit="trial", disable=quiet) as bar:
        def progress(s: Any, t: Any) -> None:
            bar.update(1)
            try:
                bar.set_postfix(best=f"{s.best_value:.4f}")
            except ValueError:
                pass

        guard = FailureGuard(objective, name, quiet)
        if done < total:
            optuna_study.optimize(objective, callbacks=[optuna.study.MaxTrialsCallback(total, states=counted), progress,
                                                        guard], catch=(HarnessError,), gc_after_trial=True)
    if guard.tripped:
        raise HarnessError(f"tune {name}: {guard.streak} trials in a row failed, so tuning stopped. "
                           f"The first of them failed with: {guard.first}")
    return optuna_study


class FailureGuard:
    """An Optuna callback that stops the study after MAX_CONSECUTIVE_FAILURES failed trials in a row."""

    def __init__(self, objective: ArmObjective, name: str, quiet: bool):
        self.objective, self.name, self.quiet = objective, name, quiet
        self.streak, self.first, self.tripped = 0, "", False

    def __call__(self, study: Any, trial: Any) -> None:
        if trial.state.name != "FAIL":
            self.streak, self.first = 0, ""
            return
        self.streak += 1
        message = self.objective.last_error or "unknown error"
        self.first = self.first or message
        if not self.quiet:
            print(f"tune {self.name}: trial {trial.number} failed: {message.splitlines()[0]}")
        if self.streak >= MAX_CONSECUTIVE_FAILURES:
            self.tripped = True
            study.stop()


def describe_study(optuna_study: Any) -> dict[str, Any]:
    """Best value and params, trial counts by state, and matplotlib plots as base64 PNG."""
    from collections import Counter

    from harness.report.plots import to_png

    counts = Counter(t.state.name for t in optuna_study.trials)
    complete = [t for t in optuna_study.trials if t.state.name == "COMPLETE"]
    out: dict[str, Any] = {"counts": dict(counts), "best_value": None, "best_params": {}, "plots": {}}
    if complete:
        out["best_value"], out["best_params"] = optuna_study.best_value, optuna_study.best_params
    from optuna.visualization import matplotlib as vis

    plots: dict[str, Any] = {"history": vis.plot_optimization_history, "importances": vis.plot_param_importances,
                             "slice": vis.plot_slice, "contour": vis.plot_contour}
    for name, plot in plots.items():
        if len(complete) < 2:
            break
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = plot(optuna_study)
            first = axes.flat[0] if hasattr(axes, "flat") else axes
            out["plots"][name] = to_png(first.figure)
        except Exception as exc:  # a plot that cannot be drawn (e.g. one distinct value) is left out
            out["plots_skipped"] = out.get("plots_skipped", []) + [f"{name}: {exc}"]
    return out


def best_overrides(summary: dict[str, Any]) -> list[str]:
    lines = []
    for arm, info in summary["arms"].items():
        if info["best_params"]:
            lines += arm_overrides(arm, info["best_params"])
    return lines
