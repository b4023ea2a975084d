"""The tuning protocols: flat (each arm's k-fold CV; optimistic for the tuned arm) and nested (inner CV
on each outer training part, scored on the outer fold), and the tuned values as ``--set`` lines."""

from __future__ import annotations

from typing import Any, Literal

from harness.errors import HarnessError
from harness.registry import Registry
from harness.run.storage import storage_for
from harness.rundir import RunDir
from harness.stats.registry import resolve_metric
from harness.study.loader import LoadedStudy
from harness.tuning.nested import nested_tune
from harness.tuning.search import (
    ArmObjective,
    TuneOptions,
    TuneSetup,
    arm_overrides,
    describe_study,
    optimize_arm,
)


def tune_study(study: LoadedStudy, registry: Registry, options: TuneOptions, overrides: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Tune every selected arm of a validated study (``harness.pipeline.validate``, which also checks the search
    space's ends); write ``tuning.json`` (best values, counts, plots) in the run directory."""
    import optuna

    tune = study.spec.tune
    if tune is None:
        raise HarnessError(f"{study.source}: no 'tune:' section; add one with a search space (see docs/guide/tuning.md)")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are reported by FailureGuard, without a traceback
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    total = tune.trials if options.trials is None else options.trials
    if total < 1:
        raise HarnessError(f"--trials must be at least 1 (got {total}): it is the total number of trials per arm")
    storage = storage_for(options.storage or tune.storage, options.out_dir)
    direction: Literal["minimize", "maximize"] = resolve_metric(tune.metric, allow_test=False).direction
    setup = TuneSetup(study, registry, options, list(overrides), storage, total, direction)
    summary = {**setup.header(), **(nested_tune(setup) if tune.nested else flat_tune(setup))}
    RunDir(options.out_dir).write_tuning(summary)
    return summary


def flat_tune(setup: TuneSetup) -> dict[str, Any]:
    """Each arm tuned on its own k-fold CV of the whole data; the arms' best values and the protocol line."""
    study, tune, total = setup.study, setup.study.spec.tune, setup.total
    assert tune is not None
    arms: dict[str, Any] = {}
    for arm in tune.arms or list(study.arms):
        objective = ArmObjective(study, setup.registry, arm, setup.options, setup.overrides)
        optuna_study = optimize_arm(f"{study.name}:{arm}", objective, setup.storage, total, setup.direction,
                                    setup.options.quiet)
        arms[arm] = describe_study(optuna_study)
    protocol = (f"{tune.sampler} sampler, {tune.pruner} pruner, {total} trials per arm; each trial is the "
                           f"arm's {study.spec.cv.folds}-fold CV (not nested: the best trial's score is optimistically biased, "
                           "and a --then-run comparison reuses the folds the values were tuned on)")
    return {"arms": arms, "protocol": protocol}


def best_overrides(summary: dict[str, Any]) -> list[str]:
    lines = []
    for arm, info in summary["arms"].items():
        if info["best_params"]:
            lines += arm_overrides(arm, info["best_params"])
    return lines
