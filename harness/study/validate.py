"""Check a loaded study against the registry: component names and options, before anything runs
(the dataset itself: :mod:`harness.study.validate_data`)."""

from __future__ import annotations

from typing import Any

from harness.errors import HarnessError, Problem, StudyError, unknown_name
from harness.registry import Registry
from harness.study.loader import LoadedStudy


def component_problems(study: LoadedStudy, registry: Registry) -> list[Problem]:
    """Every unknown component name or bad option, with the line it comes from."""
    import torch

    file = str(study.source)
    problems: list[Problem] = []

    def add(path: tuple[str, ...], message: str) -> None:
        problems.append(Problem(file, study.line_of(path), ".".join(path), message))

    if study.spec.dataset.name not in registry.components["datasets"]:
        add(("dataset", "name"), unknown_name("dataset", study.spec.dataset.name, registry.names("datasets")))
    checked_training: set[str] = set()
    for arm in study.arms.values():
        where = ("arms", arm.name) if arm.name in study.spec.arms else ("grid",)
        if arm.backbone not in registry.components["backbones"]:
            add((*where, "backbone"), unknown_name("backbone", arm.backbone, registry.names("backbones")))
        elif arm.attention_name not in registry.components["attention"]:
            add((*where, "attention"), unknown_name("attention variant", arm.attention_name, registry.names("attention")))
        else:
            try:
                from harness.models.build import build_model

                with torch.device("meta"):
                    build_model(registry, arm.backbone, arm.attention_name, arm.attention_options,
                                num_classes=2, in_chans=3, image_size=study.spec.dataset.image_size,
                                pretrained=False)
            except HarnessError as exc:
                add((*where, "attention"), str(exc))
        key = arm.training.model_dump_json()
        if key in checked_training:
            continue
        checked_training.add(key)
        own = arm.name in study.spec.arms and bool(study.spec.arms[arm.name].training)
        _check_optim(arm.training.model_dump(), registry, (*where, "training") if own else ("training",), add)
    return problems


def _check_optim(training: dict[str, Any], registry: Registry, prefix: tuple[str, ...], add: Any) -> None:
    import torch

    opt = dict(training["optimizer"])
    sched = dict(training["scheduler"])
    opt_name, sched_name = opt.pop("name"), sched.pop("name")
    if opt_name not in registry.components["optimizers"]:
        add((*prefix, "optimizer", "name"), unknown_name("optimizer", opt_name, registry.names("optimizers")))
        return
    if sched_name not in registry.components["schedulers"]:
        add((*prefix, "scheduler", "name"), unknown_name("scheduler", sched_name, registry.names("schedulers")))
    try:
        optimizer = registry.optimizer(opt_name).build([torch.nn.Parameter(torch.zeros(1))], opt)
    except HarnessError as exc:
        add((*prefix, "optimizer"), str(exc))
        return
    if sched_name in registry.components["schedulers"]:
        try:
            registry.scheduler(sched_name).build(optimizer, sched, training["epochs"])
        except HarnessError as exc:
            add((*prefix, "scheduler"), str(exc))


def validate_study(study: LoadedStudy, registry: Registry, *, data: bool = False) -> list[str]:
    """Raise :class:`StudyError` with every problem; with ``data``, the dataset too. Returns notes to show."""
    problems = component_problems(study, registry)
    notes: list[str] = []
    if data:
        from harness.study.validate_data import data_problems

        more, notes = data_problems(study, registry)
        problems += more
    if problems:
        raise StudyError(problems)
    return notes
