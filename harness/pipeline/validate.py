"""Check a loaded study against the registry: component names and options, before anything runs
(the dataset itself: :mod:`harness.pipeline.validate_data`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.errors import HarnessError, Problem, StudyError, unknown_name
from harness.options import component_option_errors
from harness.registry import Registry
from harness.study.arm_identity import identical_arms, resolved_arm
from harness.study.loader import LoadedStudy
from harness.study.schema import TrainingSpec


def component_problems(study: LoadedStudy, registry: Registry) -> list[Problem]:
    """Every unknown component name or bad option, with the line it comes from."""
    import torch

    file = str(study.source)
    problems: list[Problem] = []

    def add(path: tuple[str | int, ...], message: str) -> None:
        from harness.study.loader import FROM_SET

        if any(v == FROM_SET and k[:len(path)] == path for k, v in study.lines.items()):  # the value came from --set
            problem = Problem("--set", None, ".".join(map(str, path)), message)
        else:
            problem = Problem(file, study.line_of(path), ".".join(map(str, path)), message)
        if problem not in problems:  # arms sharing the study's training meet its problem once each
            problems.append(problem)

    if study.spec.dataset.name not in registry.components["datasets"]:
        add(("dataset", "name"), unknown_name("dataset", study.spec.dataset.name, registry.names("datasets")))
    _check_loggers(study, registry, add)
    if study.spec.cv.stop_when_settled and study.spec.compare.metric.startswith("test_"):
        add(("compare", "metric"), "cv.stop_when_settled looks at cross-validation scores, and this metric is scored "
                                   "on the held-out test set: choose a CV metric (e.g. accuracy)")
    checked_training: set[str] = set()
    for arm in study.arms.values():
        where = ("arms", arm.name) if arm.name in study.spec.arms else ("grid",)
        if unknown := _unknown_backbone(registry, arm.backbone):
            add((*where, "backbone"), unknown)
        elif arm.attention_name not in registry.components["attention"]:
            add((*where, "attention"), unknown_name("attention variant", arm.attention_name, registry.names("attention")))
        elif not _option_problems(registry, "attention", arm.attention_name, arm.attention_options,
                                  (*where, "attention"), _saying_unnamed(study, where, arm.attention_name, add)):
            try:
                from harness.models.build import build_model

                with torch.device("meta"):
                    model = build_model(registry, arm.backbone, arm.attention_name, arm.attention_options,
                                        num_classes=2, in_chans=3, image_size=study.spec.dataset.image_size,
                                        pretrained=False)
            except HarnessError as exc:
                add((*where, "attention"), str(exc))
            else:
                batch_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
                if batch_norm and arm.training.batch_size == 1:
                    own_batch = arm.name in study.spec.arms and "batch_size" in study.spec.arms[arm.name].training
                    add((*where, "training", "batch_size") if own_batch else ("training", "batch_size"),
                        f"batch_size 1 cannot train {arm.backbone} (BatchNorm needs 2 or more samples per batch); use 2 or more")
        key = arm.training.model_dump_json()
        if key in checked_training:
            continue
        checked_training.add(key)
        own = arm.name in study.spec.arms and bool(study.spec.arms[arm.name].training)
        _check_optim(arm.training, registry, (*where, "training") if own else ("training",), add)
        if problem := device_problem(arm.training.device):
            add((*where, "training", "device") if own else ("training", "device"), problem)
        elif problem := _acceleration_problem(arm.training):  # refused here, before a run touches its folder
            add(where, problem)
    return problems


def _acceleration_problem(training: TrainingSpec) -> str:
    """Why ``training.cuda_graph`` cannot run where ``training.device`` resolves on this machine ('' when it can)."""
    from harness.run.acceleration import refuse_unsupported
    from harness.run.determinism import resolve_device

    try:
        refuse_unsupported(training, resolve_device(training.device))
    except HarnessError as exc:
        return str(exc)
    return ""


def device_problem(name: str) -> str:
    """Why ``training.device`` cannot run on this machine ('' when it can)."""
    import torch

    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if int(name.partition(":")[2] or 0) >= count:
            return (f"device {name!r} but this machine has " + (f"{count} CUDA GPU(s) (cuda:0 to cuda:{count - 1})"
                    if count else "no CUDA GPU") + "; use auto (a GPU when there is one) or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        return "device 'mps' but Apple's MPS is not available on this machine; use auto or cpu"
    return ""


def _check_loggers(study: LoadedStudy, registry: Registry, add: Any) -> None:
    """Each ``loggers:`` entry names a registered logger, with its options, and its package is installed."""
    from harness.options import option_errors
    from harness.registry import logger_missing

    for index, spec in enumerate(study.spec.loggers):
        if spec.name not in registry.components["loggers"]:
            add(("loggers", index), unknown_name("logger", spec.name, registry.names("loggers")))
            continue
        info = registry.logger(spec.name)
        missing = logger_missing(info)
        if missing:
            add(("loggers", index), missing)
        for option, message in option_errors(info.options, spec.options) if info.options else []:
            add(("loggers", index, option) if option else ("loggers", index), f"{spec.name}: {message}")


def _unknown_backbone(registry: Registry, name: str) -> str:
    """Why ``name`` is no backbone ('' when it is one: registered, or a family member like timm/resnet26d)."""
    try:
        registry.backbone(name)
    except HarnessError as exc:
        return str(exc)
    return ""


def _saying_unnamed(study: LoadedStudy, where: tuple[str, ...], name: str,
                    add: Callable[[tuple[str, ...], str], None]) -> Callable[[tuple[str, ...], str], None]:
    """``add``, or where the arm's attention is a mapping of options without a name (``{reduction: 4}``) an
    ``add`` whose messages say the variant is the registry's default, which the user never wrote."""
    path = (*where, "attention")
    given = [key[len(path)] for key in study.lines if len(key) > len(path) and key[:len(path)] == path]
    if where == ("grid",) or not given or "name" in given:
        return add
    return lambda at, message: add(at, f"{message} (attention names no variant, so it is the default {name!r}: "
                                       "name one, e.g. attention: {name: se, reduction: 4})")


def _option_problems(registry: Registry, kind: str, name: str, options: Mapping[str, Any],
                     prefix: tuple[str, ...], add: Callable[[tuple[str, ...], str], None]) -> bool:
    """``add(path, message)`` per bad option (:func:`harness.options.component_option_errors`); True if any."""
    errors = component_option_errors(registry, kind, name, options)
    for key, message in errors:
        add((*prefix, *key.split(".")) if key else prefix, message)
    return bool(errors)


def _check_optim(training: TrainingSpec, registry: Registry, prefix: tuple[str, ...], add: Any) -> None:
    import torch

    opt = training.optimizer.model_dump()
    sched = training.scheduler.model_dump()
    opt_name, sched_name = opt.pop("name"), sched.pop("name")
    if opt_name not in registry.components["optimizers"]:
        add((*prefix, "optimizer", "name"), unknown_name("optimizer", opt_name, registry.names("optimizers")))
        return
    if sched_name not in registry.components["schedulers"]:
        add((*prefix, "scheduler", "name"), unknown_name("scheduler", sched_name, registry.names("schedulers")))
    bad_opt = _option_problems(registry, "optimizers", opt_name, opt, (*prefix, "optimizer"), add)
    bad_sched = sched_name in registry.components["schedulers"] and _option_problems(
        registry, "schedulers", sched_name, sched, (*prefix, "scheduler"), add)
    if bad_opt:
        return
    try:  # what only building shows (a plugin's own checks, an option model's blind spots)
        optimizer = registry.optimizer(opt_name).build([torch.nn.Parameter(torch.zeros(1))], opt)
    except HarnessError as exc:
        add((*prefix, "optimizer"), str(exc))
        return
    if sched_name in registry.components["schedulers"] and not bad_sched:
        from harness.run.training_options import build_scheduler

        try:  # with training.warmup in front when declared (refused for a metric-stepped scheduler)
            build_scheduler(registry, optimizer, training)
        except HarnessError as exc:
            add((*prefix, "warmup" if training.warmup and "warmup" in str(exc) else "scheduler"), str(exc))


def tune_space_problems(study: LoadedStudy, registry: Registry) -> list[Problem]:
    """Each searched key, at its range's ends and at every choice, passes the registry's checks
    (optimizer and scheduler options, backbones, attention), not only the schema's."""
    import copy

    from harness.study.loader import study_from_data
    from harness.tuning.search import arm_overrides

    tune = study.spec.tune
    if tune is None:
        return []
    arm = (tune.arms or list(study.arms))[0]
    problems = []
    for key, param in tune.space.items():
        for value in (param.choices if param.choices is not None else [param.low, param.high]):
            data = copy.deepcopy(study.data)
            data.pop("tune", None)
            try:
                found = component_problems(study_from_data(data, {}, study.source, arm_overrides(arm, {key: value}),
                                                           registry.defaults), registry)
            except StudyError as exc:
                found = exc.problems
            if found:
                problems.append(Problem(str(study.source), study.line_of(("tune", "space", key)), f"tune.space.{key}",
                                        f"cannot search {key!r} with value {value!r}: {found[0].path}: {found[0].message}"))
                break
    return problems


def validate_study(study: LoadedStudy, registry: Registry, *, data: bool = False) -> list[str]:
    """Raise :class:`StudyError` with every problem; with ``data``, the dataset too. Returns notes to show."""
    problems = component_problems(study, registry)
    notes = [f"warning: {w}" for w in identical_arms({n: resolved_arm(a) for n, a in study.arms.items()})]
    if data:
        from harness.pipeline.validate_data import data_problems

        more, data_notes = data_problems(study, registry)
        problems += more
        notes += data_notes
    if not problems:
        problems = tune_space_problems(study, registry)
    if problems:
        raise StudyError(problems)
    return notes
