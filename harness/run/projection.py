"""How long a study takes, before it runs (``harness plan STUDY``) or for another design (``plan RUN_DIR``).

A study file: the data are prepared and every arm built as ``harness run`` does (that time is the
measured fixed overhead); then, per arm, on the first fold and the study's device, one warm-up step,
a few timed training steps at the study's batch size and one timed evaluation pass. The projection
multiplies these by the study's steps (arms x repeats x folds x epochs x steps of each fold's size)
and evaluated images. Its interval runs from the fastest to the slowest measured step, widened for
what a short slice cannot see: down by :data:`LOW_FACTOR` (a machine that gets less loaded), up by
:data:`HIGH_FACTOR` (more load, per-epoch history and result writes, a cooling GPU). It covers what ``run.json`` counts as ``total_seconds`` (from the start of
the study to its results); Python's start-up, the statistics and the report come after.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

LOW_FACTOR = 1.25  # low: the fastest step's projection / LOW_FACTOR
HIGH_FACTOR = 2.0  # high: the slowest step's projection x HIGH_FACTOR (unmeasured costs only add time)


@dataclass(frozen=True)
class ArmProjection:
    arm: str
    compute: str  # device/precision
    step_seconds: float  # median of the timed steps
    step_low: float
    step_high: float
    steps: int  # training steps in the whole study for this arm
    eval_seconds_per_image: float
    eval_images: int  # images evaluated in the whole study (inner + validation every epoch, then validation + test)
    cell_setup_seconds: float  # building a cell's model, optimizer and fold tensors; saving its weights
    cells: int

    def seconds(self, step: float, factor: float = 1.0) -> float:
        return factor * (self.steps * step + self.eval_images * self.eval_seconds_per_image
                         + self.cells * self.cell_setup_seconds)


@dataclass(frozen=True)
class Projection:
    study: str
    fixed_overhead_seconds: float
    arms: list[ArmProjection]
    measured_steps: int

    @property
    def projected_seconds(self) -> float:
        return self.fixed_overhead_seconds + sum(a.seconds(a.step_seconds) for a in self.arms)

    @property
    def low(self) -> float:
        return (self.fixed_overhead_seconds + sum(a.seconds(a.step_low) for a in self.arms)) / LOW_FACTOR

    @property
    def high(self) -> float:
        return (self.fixed_overhead_seconds + sum(a.seconds(a.step_high) for a in self.arms)) * HIGH_FACTOR

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "projected_seconds": self.projected_seconds, "low": self.low, "high": self.high,
                "fixed_overhead_seconds": self.fixed_overhead_seconds, "measured_steps": self.measured_steps,
                "widen": [LOW_FACTOR, HIGH_FACTOR], "arms": [{**asdict(a), "projected_seconds": a.seconds(a.step_seconds)} for a in self.arms],
                "covers": "run.json total_seconds: from the study's start to its results (not Python start-up, "
                          "statistics or the report)"}


def steps_per_epoch(n: int, batch: int) -> int:
    """The trainer's steps over ``n`` samples: never a last batch of one (BatchNorm)."""
    return max(1, n // batch) if n % batch == 1 else math.ceil(n / batch)


def project_study(study: Any, registry: Any, steps: int = 5, log: Any = None) -> Projection:
    """Measure a short slice of every arm of ``study`` (a LoadedStudy) and project the whole study."""
    import torch

    from harness.atomic import atomic_save_torch
    from harness.data.prepared import prepare_data, write_data_files
    from harness.run import determinism
    from harness.run.fingerprint import data_fingerprint
    from harness.run.runner import RunOptions, StudyRunner, default_threads
    from harness.rundir import Cell

    if steps < 2:
        from harness.errors import HarnessError

        raise HarnessError(f"--steps must be at least 2 (their spread gives the interval), got {steps}")
    torch.set_num_threads(study.spec.training.threads or default_threads())
    with tempfile.TemporaryDirectory(prefix="harness-plan-") as tmp:
        runner = StudyRunner(study, registry, RunOptions(Path(tmp), quiet=True, report=None, stats=False, loggers=False))
        started = time.perf_counter()
        data = prepare_data(study, registry, Path(tmp), log or (lambda message: None))
        runner.data_key = data_fingerprint(data)
        write_data_files(Path(tmp), data)
        runner._preflight(data)  # every arm built once, as the run does
        overhead = time.perf_counter() - started
        folds, n_test = data.splits.folds, len(data.splits.test)
        arms = []
        for arm in runner.arms:
            device = determinism.resolve_device(arm.training.device)
            determinism.configure(arm.training.deterministic, device)
            built = time.perf_counter()
            (Path(tmp) / arm.name).mkdir()
            trainer = runner._trainer(arm, folds[0], data, Path(tmp) / arm.name, device)
            setup = time.perf_counter() - built
            step_times, per_image = _measure(trainer, steps, device)
            saved = time.perf_counter()
            atomic_save_torch(Cell(Path(tmp) / arm.name).best, trainer.scored_model.state_dict())  # as each cell does
            setup += time.perf_counter() - saved
            t = arm.training
            arms.append(ArmProjection(
                arm.name, determinism.compute_of(device, t.amp), statistics.median(step_times), min(step_times),
                max(step_times), sum(t.epochs * steps_per_epoch(len(f.fit), t.batch_size) for f in folds), per_image,
                sum(t.epochs * (len(f.inner) + len(f.val)) + len(f.val) + n_test for f in folds), setup, len(folds)))
    return Projection(study.spec.name, overhead, arms, steps)


def _measure(trainer: Any, steps: int, device: Any) -> tuple[list[float], float]:
    """Seconds of each of ``steps`` training steps after a warm-up one, and of evaluating one image."""
    import torch

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    inputs, batch = trainer.inputs, trainer.training.batch_size
    n = len(inputs.y_train)
    order = torch.randperm(n, generator=trainer._epoch_generator("order", 0)).to(device)
    generator = trainer._epoch_generator("augment", 0)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    trainer.model.train()
    times = []
    for step in range(steps + 1):  # step 0 warms up (kernels, allocator) and is not counted
        idx = order[torch.arange(step * batch, (step + 1) * batch, device=device) % n]
        sync()
        started = time.perf_counter()
        trainer.train_step(idx, generator, loss_sum, correct)
        sync()
        if step:
            times.append(time.perf_counter() - started)
    started = time.perf_counter()
    trainer.evaluate(inputs.x_val, inputs.y_val)  # reads its result back: synchronised
    return times, (time.perf_counter() - started) / max(1, len(inputs.y_val))


def format_projection(p: Projection) -> list[str]:
    """Plain lines: per arm what was measured and projected, then the whole study with its interval."""
    lines = [f"plan for {p.study}: measured {p.measured_steps} training steps per arm after a warm-up step, "
             "and one evaluation pass"]
    for a in p.arms:
        lines.append(f"  {a.arm} ({a.compute}): {a.step_seconds:.3g} s/step (measured {a.step_low:.3g}-{a.step_high:.3g}) "
                     f"x {a.steps} steps + evaluation of {a.eval_images} images + {a.cells} cell set-ups "
                     f"= {duration(a.seconds(a.step_seconds))}")
    lines.append(f"  fixed overhead (data preparation, building every arm): {duration(p.fixed_overhead_seconds)}")
    lines.append(f"projected wall time: {duration(p.projected_seconds)} (interval {duration(p.low)} to "
                 f"{duration(p.high)}); not counted: Python start-up, the statistics and the report at the end")
    return lines


def duration(seconds: float) -> str:
    """``41 s``, ``12 min``, ``3.6 h``."""
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def design_seconds(results: pd.DataFrame, run_info: dict[str, Any], folds: int, new_folds: int,
                   repeats: int) -> tuple[float, float, float] | None:
    """Wall time of ``new_folds`` x ``repeats`` from a run's measured times: (projected, low, high), or None.

    A cell costs its results.csv ``seconds`` (training and per-epoch evaluation), taken as proportional
    to its training part, (k - 1) / k of the data, plus the run's per-cell rest (building, writing:
    run.json's total less its fixed overhead and the cells' seconds, shared equally); the interval
    runs from each arm's fastest to its slowest measured cell."""
    if "seconds" not in results or results["seconds"].dropna().empty:
        return None
    measured = results.dropna(subset=["seconds"])
    fixed = float(run_info.get("fixed_overhead_seconds", 0.0))
    rest = max(0.0, float(run_info.get("total_seconds", 0.0)) - fixed - float(measured["seconds"].sum())) / len(measured)
    scale = ((new_folds - 1) / new_folds) / ((folds - 1) / folds)
    per_arm = measured.groupby("arm")["seconds"]
    cells = new_folds * repeats
    mean, low, high = (fixed + cells * sum(scale * float(v) + rest for v in getattr(per_arm, how)())
                       for how in ("mean", "min", "max"))
    return mean, low, high
