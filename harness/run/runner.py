"""Run a study: every arm x repeat x fold cell on identical splits, resumable, results written atomically."""

from __future__ import annotations

import contextlib
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd
import torch

from harness import __version__
from harness import rundir as files
from harness.contracts import EpochContext, FoldContext, StudyContext, StudyStartContext
from harness.data.prepared import PreparedData, prepare_data, write_data_files
from harness.data.splits import Fold
from harness.errors import HarnessError, Interrupted
from harness.logs import Progress, log, run_log
from harness.models.build import build_model, model_cost
from harness.registry import Registry
from harness.run import acceleration, determinism
from harness.run.cells import aggregate, is_done, mixed_threads, prune_checkpoints, write_cell
from harness.run.determinism import resolve_device
from harness.run.faults import kill_point
from harness.run.fingerprint import cell_fingerprint, data_fingerprint
from harness.run.inputs import FoldDataTooLarge, default_threads, fold_inputs
from harness.run.stopping import SettledStop, settled_stop
from harness.run.trainer import CorruptCheckpoint, FoldOutcome, FoldTrainer
from harness.run.training_options import build_scheduler
from harness.rundir import Cell, RunDir
from harness.seeds import cell_seeds
from harness.study.arm_identity import resolved_study, study_git_commit
from harness.study.loader import Arm, LoadedStudy

__all__ = ["FoldDataTooLarge", "RunOptions", "StudyRunner", "default_threads", "resolve_device", "run_lock",
           "run_study"]


@dataclass
class RunOptions:
    out_dir: Path
    fresh: bool = False
    quiet: bool = False
    report: Callable[[Path], None] | None = None  # renders the report (harness.pipeline.finish); None: none
    stats: bool = True
    arms: list[str] | None = None  # run only these arms
    cache_dir: Path | None = None  # decoded-image cache (default: <out_dir>/cache); tuning trials share one
    fold_order: list[int] | None = None  # order of the (repeat, fold) cells, as indices into the splits
    on_cell: Callable[[Arm, Any, dict[str, Any]], None] | None = None  # after each cell; may raise to stop
    on_epoch: Callable[[Arm, Any, dict[str, float]], None] | None = None  # after each epoch; may raise to stop
    subset: Any = None  # sample indices to use instead of the whole dataset (nested CV's outer-train part)
    loggers: bool = True  # start the study's ``loggers:`` (tuning trials do not)

    def __post_init__(self) -> None:
        if isinstance(self.report, bool):  # the renderer comes from the pipeline; a flag here would be ignored
            raise TypeError("RunOptions.report is a renderer (harness.pipeline.finish.report_writer) or None")


@dataclass
class _Interrupt:
    requested: bool = False
    previous: Any = None

    def handler(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            signal.signal(signal.SIGINT, self.previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        log.warning("interrupt: finishing the current step and saving a checkpoint (Ctrl-C again to stop at once)")


@contextlib.contextmanager
def run_lock(run_dir: Path, *, shared: bool = False) -> Iterator[None]:
    """One ``harness run`` per run directory at a time (storage workers share it among themselves)."""
    with RunDir(run_dir).lock(shared=shared):
        yield


@dataclass
class StudyRunner:
    study: LoadedStudy
    registry: Registry
    options: RunOptions
    interrupt: _Interrupt = field(default_factory=_Interrupt)
    failures: list[str] = field(default_factory=list)
    _started: float = 0.0
    _finished: list[Path] = field(default_factory=list)  # cells done in this process (checked again at the end)
    _overhead: float = 0.0
    _loggers: list[object] = field(default_factory=list)  # the study's loggers, started by setup()
    data_key: str = ""  # data_fingerprint of the prepared data, set by setup()
    stopping: SettledStop | None = None  # cv.stop_when_settled's rule (its record goes into run.json)
    _cells_started: bool = False  # a cell began (a failed run keeps a folder it created from then on)

    @property
    def run_dir(self) -> Path:
        return self.options.out_dir

    @property
    def arms(self) -> list[Arm]:
        wanted = self.options.arms
        return [a for a in self.study.arms.values() if wanted is None or a.name in wanted]

    def log(self, message: str) -> None:
        """A diagnostic line: stderr (unless --quiet) and the run directory's run.log."""
        log.info(message)

    def cell_dir(self, arm: str, repeat: int, fold: int) -> Path:
        return RunDir(self.run_dir).cell(arm, repeat, fold)

    def run(self) -> pd.DataFrame:
        files.refuse_own_study(self.study.source, self.run_dir)
        created = files.first_missing(self.run_dir)  # a run that fails before its first cell removes it
        with run_lock(self.run_dir):
            if self.options.fresh:
                self._clear()
            else:
                RunDir(self.run_dir).refuse_other_layout(None)
                RunDir(self.run_dir).remove_temp_files()  # leftovers of a killed write
            try:
                with run_log(RunDir(self.run_dir).log_path), self.interruptible():
                    return self._run()
            except BaseException:
                if created is not None and not self._cells_started:
                    files.remove_created(self.run_dir, created)
                raise
            finally:
                if self._loggers:  # the run stopped early: close the loggers, never hiding the cause
                    with contextlib.suppress(Exception):
                        self._stop_loggers(completed=False)

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Ctrl-C sets a flag; the trainer finishes its step, checkpoints and stops."""
        previous = signal.signal(signal.SIGINT, self.interrupt.handler)
        self.interrupt.previous = previous
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _clear(self) -> None:
        RunDir(self.run_dir).clear(keep=self.registry.kept_plugin_files())

    def setup(self) -> tuple[PreparedData, dict[str, dict[str, Any]]]:
        """Everything before the first cell: resolved study, data decoded once, splits, every arm built once."""
        spec = self.study.spec
        self._started = time.perf_counter()
        torch.set_num_threads(spec.training.threads or default_threads())
        resolved = resolved_study(self.study)
        RunDir(self.run_dir).invalidate_summaries()  # nothing of an earlier run's answers survives a changed rerun
        RunDir(self.run_dir).write_study(resolved)
        if self.options.loggers and spec.loggers:
            self._loggers = self.registry.start_loggers(((lg.name, lg.options) for lg in spec.loggers),
                                                       RunDir(self.run_dir).plugin_dir)
        self.registry.study_started(StudyStartContext(spec.name, self.run_dir, resolved["arms"], resolved))
        data = prepare_data(self.study, self.registry, self.run_dir, self.log, self.options.cache_dir,
                            subset=self.options.subset)
        write_data_files(self.run_dir, data)
        self.data_key = data_fingerprint(data)
        costs = self._preflight(data)
        self._overhead = time.perf_counter() - self._started
        repeats = len({fold.repeat for fold in data.splits.folds})
        cells = f"{len(data.splits.folds) // max(repeats, 1)} fold(s)" + (f" x {repeats} repeats" if repeats > 1 else "")
        self.log(f"study {spec.name}: {len(self.arms)} arm(s) x {cells}; "
                 f"{len(data.table.paths)} images ({data.num_classes} classes), decoded once in "
                 f"{data.timings['decode']:.2f}s; fixed overhead {self._overhead:.2f}s; "
                 f"{torch.get_num_threads()} CPU thread(s)")
        return data, costs

    def run_cell(self, arm: Arm, fold: Fold, data: PreparedData, costs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """One cell with the fault handling every runner needs; None when it failed (retried on rerun)."""
        try:
            result = self._run_cell(arm, fold, data, costs[arm.name])
            self._finished.append(self.cell_dir(arm.name, fold.repeat, fold.fold))
            if self.options.on_cell is not None:
                self.options.on_cell(arm, fold, result)
            return result
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted during {arm.name} repeat {fold.repeat} fold {fold.fold}; checkpoint saved in "
                f"{self.cell_dir(arm.name, fold.repeat, fold.fold)}; rerun the same command to resume",
            ) from None
        except torch.cuda.OutOfMemoryError as exc:
            cause = (str(exc) if isinstance(exc, FoldDataTooLarge) else
                     f"CUDA out of memory at batch size {arm.training.batch_size}; "
                     f"try --set training.batch_size={max(1, arm.training.batch_size // 2)}")
            message = f"{arm.name} r{fold.repeat} f{fold.fold}: {cause}. Fold marked failed; rerun to retry it"
            self.failures.append(message)
            self.log(message)
            torch.cuda.empty_cache()
            return None

    def finish(self, data: PreparedData, costs: dict[str, dict[str, Any]],
               results: pd.DataFrame | None = None) -> pd.DataFrame:
        """results.csv (unless given, already written), run.json, stats.json, the study_finished hook, the report."""
        spec = self.study.spec
        if results is None:
            results = self._aggregate(data)
        for cell in self._finished:
            if not Cell(cell).has_result():
                self.failures.append(f"{cell} was deleted while the study ran; rerun to train that cell again")
        run_warnings = [mixed] if (mixed := mixed_threads(results, spec.training.threads)) else []
        for warning in run_warnings:
            log.warning(warning)
        run_info = {"harness_version": __version__, "torch_version": torch.__version__,
                    "device": str(resolve_device(spec.training.device)), "threads": torch.get_num_threads(),
                    "fixed_overhead_seconds": self._overhead, "timings": data.timings, "data_notes": data.table.notes,
                    "arms": costs, "failures": self.failures, "warnings": run_warnings, "total_seconds": time.perf_counter() - self._started,
                    "compute": {arm.name: determinism.record(arm) for arm in self.arms},  # device/precision, determinism
                    "plugins": [vars(p) for p in self.registry.plugins],
                    "study_git_commit": study_git_commit(self.study.source.parent),
                    "study_dir": str(self.study.source.parent.resolve())}
        if self.stopping is not None:
            run_info["stopping"] = self.stopping.record
        RunDir(self.run_dir).write_run_info(run_info)
        if self.options.stats:
            self._write_stats(results)
        self.registry.study_finished(StudyContext(spec.name, self.run_dir, results, tuple(
            RunDir(self.run_dir).path_of(name) for name in (files.REPORT, files.RESULTS, files.STUDY))))
        if self.options.report is not None:  # before the loggers close: they may keep the report
            self.options.report(self.run_dir)
        self._stop_loggers(completed=not self.failures)
        if self.failures:
            raise HarnessError("some folds failed:\n" + "\n".join(self.failures))
        return results

    def _run(self) -> pd.DataFrame:
        data, costs = self.setup()
        folds = data.splits.folds
        if self.options.fold_order is not None:
            folds = [folds[i] for i in self.options.fold_order]
        cells = [(arm, f) for arm in self.arms for f in folds]
        stopper = self.stopping = settled_stop(self.run_dir, self.study.spec, [a.name for a in self.arms],
                                               self.options.fold_order)
        self._cells_started = True
        try:
            with Progress(len(cells), "study", "cell", quiet=self.options.quiet, position=0) as bar:
                for batch in stopper.batches(cells) if stopper else [cells]:  # stop_when_settled: one repeat each
                    failed = 0
                    for arm, fold in batch:
                        bar.describe(f"{arm.name} r{fold.repeat} f{fold.fold}")
                        result = self.run_cell(arm, fold, data, costs)
                        failed += result is None
                        bar.update(note=f"{arm.name} r{fold.repeat} f{fold.fold}" + ("" if result else " failed"))
                    if stopper and stopper.look(batch[0][1].repeat, failed, lambda: self._aggregate(data), self.log):
                        break
        except BaseException:
            with contextlib.suppress(Exception):  # the finished cells' results, never hiding the cause
                self._aggregate(data)
            raise
        return self.finish(data, costs)

    def _stop_loggers(self, *, completed: bool) -> None:
        loggers, self._loggers = self._loggers, []
        self.registry.stop_loggers(loggers, completed=completed)

    def _write_stats(self, results: pd.DataFrame) -> None:
        """stats.json: every arm vs the baseline with CV-valid tests (skipped for a single arm)."""
        from harness.run.analysis import compare_run, write_stats

        if results.empty or results["arm"].nunique() < 2:
            return
        c = self.study.spec.compare
        write_stats(self.run_dir, compare_run(self.run_dir, baseline=c.baseline, metric=c.metric,
                                               alpha=c.alpha, rope=c.rope))

    def _preflight(self, data: PreparedData) -> dict[str, dict[str, Any]]:
        """Build every arm once before training: config errors surface now, and cost is recorded."""
        costs = {}
        for arm in self.arms:
            try:
                acceleration.refuse_unsupported(arm.training, resolve_device(arm.training.device))
                model = self._build(arm, data)
            except HarnessError as exc:
                line = self.study.line_of(("arms", arm.name))
                where = "--set: " if line == -1 else f"{self.study.source}:{line}: " if line else ""
                raise HarnessError(f"{where}arms.{arm.name}: {exc}") from None
            cost = model_cost(model, data.images.channels, self.study.spec.dataset.image_size)
            costs[arm.name] = {"backbone": arm.backbone, "attention": arm.attention_name,
                               "attention_options": arm.attention_options, "params": cost.params,
                               "flops": cost.flops, "attention_modules": len(cost.attention),
                               "notes": list(getattr(model, "harness_notes", []))}
        RunDir(self.run_dir).write_arms(costs)
        return costs

    def _build(self, arm: Arm, data: PreparedData) -> torch.nn.Module:
        return build_model(self.registry, arm.backbone, arm.attention_name, arm.attention_options,
                           num_classes=data.num_classes, in_chans=data.images.channels,
                           image_size=self.study.spec.dataset.image_size, pretrained=arm.pretrained,
                           init=self.study.spec.init)

    def _run_cell(self, arm: Arm, fold: Fold, data: PreparedData, cost: dict[str, Any]) -> dict[str, Any]:
        """Train and evaluate one cell (or reuse it when done with the same settings); its result."""
        cell = self.cell_dir(arm.name, fold.repeat, fold.fold)
        fingerprint = cell_fingerprint(self.study, arm, self.data_key)
        if is_done(cell, fingerprint):
            prune_checkpoints(cell, arm.training.checkpoints)  # a kill after result.json may have left last.pt
            return Cell(cell).result()
        if Cell(cell).has_result() or (Cell(cell).last.exists() and not self._same_config(cell, fingerprint)):
            self.log(f"{arm.name} r{fold.repeat} f{fold.fold}: settings changed since it ran; training it again")
            _forget(cell)
        cell.mkdir(parents=True, exist_ok=True)
        Cell(cell).write_fingerprint(fingerprint)
        device = resolve_device(arm.training.device)
        determinism.configure(arm.training.deterministic, device)
        trainer = self._trainer(arm, fold, data, cell, device)
        try:
            resumed = trainer.resume()
        except CorruptCheckpoint as exc:
            self.log(f"{Cell(cell).last} is corrupt ({exc}); restarting this fold from scratch")
            _forget(cell)
            trainer = self._trainer(arm, fold, data, cell, device)
            resumed = ""
        if resumed:
            self.log(f"{arm.name} r{fold.repeat} f{fold.fold}: {resumed}")
        with determinism.explained(arm.name):
            outcome = trainer.run()
        kill_point("evaluated")
        return self._write_cell(arm, fold, data, cell, fingerprint, outcome, cost)

    def _same_config(self, cell: Path, fingerprint: str) -> bool:
        try:
            return Cell(cell).fingerprint() == fingerprint
        except OSError:
            return False

    def _trainer(self, arm: Arm, fold: Fold, data: PreparedData, cell: Path, device: torch.device) -> FoldTrainer:
        # the same initial weights for every arm in a fold: only the architecture differs
        seeds = cell_seeds(self.study.spec.seed, self.study.spec.cv, fold.repeat, fold.fold)  # cv.vary may fix some
        torch.manual_seed(seeds["init"])
        model = self._build(arm, data).to(device)
        channels_last = device.type == "cuda" if arm.training.channels_last is None else arm.training.channels_last
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt_spec = arm.training.optimizer.model_dump()
        optimizer = self.registry.optimizer(opt_spec.pop("name")).build(model.parameters(), opt_spec)
        scheduler = build_scheduler(self.registry, optimizer, arm.training)  # with training.warmup when declared
        inputs = fold_inputs(data, fold, device, bool(arm.pretrained))
        epoch_bar = Progress(arm.training.epochs, "epochs", "epoch", quiet=self.options.quiet, plain=False,
                             leave=False, position=1)  # off a terminal: debug lines only (--verbose)

        def on_epoch(row: dict[str, float]) -> None:
            epoch_bar.update(int(row["epoch"]), f"{arm.name} r{fold.repeat} f{fold.fold}",
                             loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_accuracy']:.3f}")
            self.registry.epoch_finished(EpochContext(
                self.study.spec.name, self.run_dir, arm.name, fold.repeat, fold.fold, int(row["epoch"]),
                MappingProxyType(dict(row)), float(row["lr"]), float(row["seconds"]), cell))
            if self.options.on_epoch is not None:
                self.options.on_epoch(arm, fold, row)

        return FoldTrainer(model, optimizer, scheduler, arm.training, self.study.spec.dataset.augment, inputs,
                           cell, seeds["order"], device, augment_seed=seeds["augment"],
                           should_stop=lambda: self.interrupt.requested, on_epoch=on_epoch,
                           identity=f"{arm.name}/r{fold.repeat}-f{fold.fold}/{cell_fingerprint(self.study, arm, self.data_key)}")

    def _write_cell(self, arm: Arm, fold: Fold, data: PreparedData, cell: Path, fingerprint: str,
                    outcome: FoldOutcome, cost: dict[str, Any]) -> dict[str, Any]:
        result, metrics = write_cell(cell, arm, fold, data, outcome, fingerprint, cost)
        self.registry.fold_finished(FoldContext(self.study.spec.name, self.run_dir, arm.name, fold.repeat, fold.fold,
                                                metrics))
        if outcome.status != "ok":
            warnings.warn(f"{arm.name} r{fold.repeat} f{fold.fold}: {outcome.status}: {outcome.note}", stacklevel=2)
        elif result["training_flag"]:
            self.log(f"{arm.name} r{fold.repeat} f{fold.fold}: training flag: {result['training_flag']}")
        return result

    def _aggregate(self, data: PreparedData) -> pd.DataFrame:
        """results.csv and predictions.csv from every finished cell of this study's arms."""
        return aggregate(self.run_dir, [(self.cell_dir(arm.name, fold.repeat, fold.fold), fingerprint)
                                        for arm in self.arms
                                        for fingerprint in [cell_fingerprint(self.study, arm, self.data_key)]
                                        for fold in data.splits.folds if self._looked_at(fold.repeat)])

    def _looked_at(self, repeat: int) -> bool:
        """stop_when_settled: results hold only the repeats looked at (not cells of an earlier, longer run)."""
        return self.stopping is None or repeat < self.stopping.record["repeats_run"]


def _forget(cell: Path) -> None:
    """Drop a cell's result and checkpoints so it trains from scratch."""
    Cell(cell).forget()


def run_study(study: LoadedStudy, registry: Registry, options: RunOptions) -> pd.DataFrame:
    return StudyRunner(study, registry, options).run()
