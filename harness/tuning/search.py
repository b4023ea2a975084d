"""``harness tune``: Optuna search over any dotted study key, per arm, on the arm's own k-fold CV.

Pruning understands folds: the Wilcoxon pruner compares a trial's per-fold scores with the best
trial's on the same folds (fold order shuffled per trial); median/hyperband prune on per-epoch
values within folds. Storage is SQLite in the run directory by default, or any Optuna storage
URL shared by many workers; RUNNING trials of a dead worker are failed by the heartbeat and
re-run. ``--trials`` is the total for the study, so a rerun resumes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import HarnessError
from harness.registry import Registry
from harness.rundir import RunDir
from harness.seeds import seed_for
from harness.study.loader import TUNE_METRICS, LoadedStudy, load_study, set_line
from harness.study.schema import ParamSpec, TuneSpec

MAX_CONSECUTIVE_FAILURES = 5  # failed trials in a row (in this process) after which tuning stops


@dataclass
class TuneOptions:
    out_dir: Path
    trials: int | None = None
    storage: str | None = None
    quiet: bool = False
    keep_checkpoints: bool = False
    report: Callable[[Path], None] | None = None  # nested CV renders the outer scores' report with it


@dataclass(frozen=True)
class TuneSetup:
    """What every tuning protocol (flat, nested) works from."""

    study: LoadedStudy
    registry: Registry
    options: TuneOptions
    overrides: list[str]
    storage: Any
    total: int  # trials per arm (per outer fold, nested)
    direction: Literal["minimize", "maximize"]

    def header(self) -> dict[str, Any]:
        """The first fields of ``tuning.json``: what was optimised, and how."""
        tune = self.study.spec.tune
        assert tune is not None
        return {"metric": tune.metric, "direction": self.direction, "pruner": tune.pruner, "sampler": tune.sampler}


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
        self.trials_dir = trials_dir or RunDir(options.out_dir).trials / arm
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
        study = load_study(self.study.source, [*self.base_overrides, *arm_overrides(self.arm, params)],
                           self.registry.defaults)
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
            trial_dir, quiet=True, report=None, stats=False, arms=[self.arm], cache_dir=RunDir(self.options.out_dir).cache(),
            fold_order=order, on_cell=on_cell, on_epoch=on_epoch, subset=self.subset,
            loggers=False))
        try:
            runner.run()
        finally:
            if not self.options.keep_checkpoints:
                for checkpoint in RunDir(trial_dir).checkpoints():
                    checkpoint.unlink()
        trial.set_user_attr("fold_scores", scores)
        return sum(scores) / len(scores)


def optimize_arm(name: str, objective: ArmObjective, storage: Any, total: int, direction: Literal["minimize", "maximize"],
                 quiet: bool) -> Any:
    """Run (or resume) one Optuna study until it holds ``total`` complete or pruned trials."""
    import optuna

    from harness.logs import Progress

    tune = objective.tune
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    optuna_study = optuna.create_study(storage=storage, study_name=name, direction=direction,
                                       load_if_exists=True, pruner=_pruner(tune))
    # seeded, and different on each resume so a rerun does not repeat the first suggestions
    optuna_study.sampler = _sampler(tune, seed_for(objective.study.spec.seed, name, len(optuna_study.trials)) % 2**32)
    for fixed in tune.enqueue:
        optuna_study.enqueue_trial(fixed, skip_if_exists=True)
    done = len([t for t in optuna_study.trials if t.state in counted])
    with Progress(total, f"tune {name}", "trial", quiet=quiet) as bar:  # a bar on a terminal, else lines
        if done:
            bar.update(min(done, total), note="resumed")

        def progress(s: Any, t: Any) -> None:
            try:
                bar.update(note=name, best=f"{s.best_value:.4f}")
            except ValueError:
                bar.update(note=name)

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
        from harness.logs import log

        log.warning(f"tune {self.name}: trial {trial.number} failed: {message.splitlines()[0]}")
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
