"""Run a study: every arm x repeat x fold cell on identical splits, resumable, results written atomically."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from harness import __version__
from harness.atomic import atomic_write_text
from harness.contracts import FoldContext, StudyContext
from harness.data.prepared import PreparedData, normalization, prepare_data, write_data_files
from harness.errors import HarnessError, Interrupted
from harness.models.build import build_model, model_cost
from harness.registry import Registry
from harness.run.flags import baseline_rates, training_flag
from harness.run.threads import default_threads
from harness.run.trainer import CorruptCheckpoint, FoldInputs, FoldTrainer, seed_for
from harness.stats.metrics import classification_metrics
from harness.study.loader import Arm, LoadedStudy

RESULT_FILE = "result.json"


@dataclass
class RunOptions:
    out_dir: Path
    fresh: bool = False
    quiet: bool = False
    report: bool = True
    stats: bool = True
    arms: list[str] | None = None  # run only these arms
    cache_dir: Path | None = None  # decoded-image cache (default: <out_dir>/cache); tuning trials share one
    fold_order: list[int] | None = None  # order of the (repeat, fold) cells, as indices into the splits
    on_cell: Callable[[Arm, Any, dict[str, Any]], None] | None = None  # after each cell; may raise to stop
    on_epoch: Callable[[Arm, Any, dict[str, float]], None] | None = None  # after each epoch; may raise to stop
    subset: Any = None  # sample indices to use instead of the whole dataset (nested CV's outer-train part)


@dataclass
class _Interrupt:
    requested: bool = False
    previous: Any = None

    def handler(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            signal.signal(signal.SIGINT, self.previous or signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: finishing the current step and saving a checkpoint (Ctrl-C again to stop at once)")


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """One ``harness run`` per run directory at a time."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / ".lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise HarnessError(
            f"{run_dir} is in use by another harness process; wait for it, or use --out for a separate run"
        ) from None
    try:
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError(f"training.device is {name!r} but no CUDA GPU is available; use auto or cpu")
    return torch.device(name)


def resolved_study(study: LoadedStudy) -> dict[str, Any]:
    data = study.spec.model_dump(mode="json", exclude={"grid"})
    data["arms"] = {
        name: {"backbone": a.backbone, "attention": {"name": a.attention_name, **a.attention_options},
               "pretrained": a.pretrained, "training": a.training.model_dump(mode="json")}
        for name, a in study.arms.items()
    }
    return data


def cell_fingerprint(study: LoadedStudy, arm: Arm) -> str:
    """What a cell's numbers depend on; a stored cell is reused only if this matches."""
    spec = study.spec
    training = arm.training.model_dump(mode="json", exclude={"device", "threads"})
    parts = {"dataset": spec.dataset.model_dump(mode="json"), "cv": spec.cv.model_dump(mode="json"),
             "seed": spec.seed, "backbone": arm.backbone, "attention": [arm.attention_name, arm.attention_options],
             "pretrained": arm.pretrained, "training": training}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class FoldDataTooLarge(torch.cuda.OutOfMemoryError):
    """The fold's images, not a batch, exhausted GPU memory."""


@dataclass
class StudyRunner:
    study: LoadedStudy
    registry: Registry
    options: RunOptions
    interrupt: _Interrupt = field(default_factory=_Interrupt)
    failures: list[str] = field(default_factory=list)
    _outputs: dict[Path, tuple[int, dict[str, Any], pd.DataFrame]] = field(default_factory=dict)
    _started: float = 0.0
    _overhead: float = 0.0

    @property
    def run_dir(self) -> Path:
        return self.options.out_dir

    @property
    def arms(self) -> list[Arm]:
        wanted = self.options.arms
        return [a for a in self.study.arms.values() if wanted is None or a.name in wanted]

    def log(self, message: str) -> None:
        if not self.options.quiet:
            from tqdm import tqdm

            tqdm.write(message)

    def cell_dir(self, arm: str, repeat: int, fold: int) -> Path:
        return self.run_dir / "cells" / arm / f"r{repeat}-f{fold}"

    def run(self) -> pd.DataFrame:
        with run_lock(self.run_dir):
            if self.options.fresh:
                self._clear()
            with self.interruptible():
                return self._run()

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
        import shutil

        for name in ("cells", "results.csv", "predictions.csv", "report.html", "splits.csv", "run.json", "stats.json"):
            target = self.run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def setup(self) -> tuple[PreparedData, dict[str, dict[str, Any]]]:
        """Everything before the first cell: resolved study, data decoded once, splits, every arm built once."""
        spec = self.study.spec
        self._started = time.perf_counter()
        torch.set_num_threads(spec.training.threads or default_threads())
        atomic_write_text(self.run_dir / "study.yaml", yaml.safe_dump(resolved_study(self.study), sort_keys=False))
        data = prepare_data(self.study, self.registry, self.run_dir, self.log, self.options.cache_dir,
                            subset=self.options.subset)
        write_data_files(self.run_dir, data)
        costs = self._preflight(data)
        self._overhead = time.perf_counter() - self._started
        self.log(f"study {spec.name}: {len(self.arms)} arm(s) x {len(data.splits.folds)} fold(s); "
                 f"{len(data.table.paths)} images ({data.num_classes} classes), decoded once in "
                 f"{data.timings['decode']:.2f}s; fixed overhead {self._overhead:.2f}s; "
                 f"{torch.get_num_threads()} CPU thread(s)")
        return data, costs

    def run_cell(self, arm: Arm, fold: Any, data: PreparedData, costs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """One cell with the fault handling every runner needs; None when it failed (retried on rerun)."""
        try:
            result = self._run_cell(arm, fold, data, costs[arm.name])
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
        finally:
            self._aggregate(data)

    def finish(self, data: PreparedData, costs: dict[str, dict[str, Any]],
               results: pd.DataFrame | None = None) -> pd.DataFrame:
        """results.csv (unless given, already written), run.json, stats.json, the study_finished hook, the report."""
        spec = self.study.spec
        if results is None:
            results = self._aggregate(data)
        run_info = {"harness_version": __version__, "torch_version": torch.__version__,
                    "device": str(resolve_device(spec.training.device)), "threads": torch.get_num_threads(),
                    "fixed_overhead_seconds": self._overhead, "timings": data.timings, "data_notes": data.table.notes,
                    "arms": costs, "failures": self.failures, "total_seconds": time.perf_counter() - self._started,
                    "plugins": [vars(p) for p in self.registry.plugins],
                    "study_git_commit": _git_commit(self.study.source.parent),
                    "study_dir": str(self.study.source.parent.resolve())}
        atomic_write_text(self.run_dir / "run.json", json.dumps(run_info, indent=1, default=str))
        if self.options.stats:
            self._write_stats(results)
        self.registry.hook().study_finished(context=StudyContext(spec.name, self.run_dir, results))
        if self.options.report:
            from harness.report.render import write_report

            write_report(self.run_dir, self.registry)
        if self.failures:
            raise HarnessError("some folds failed:\n" + "\n".join(self.failures))
        return results

    def _run(self) -> pd.DataFrame:
        from tqdm import tqdm

        data, costs = self.setup()
        folds = data.splits.folds
        if self.options.fold_order is not None:
            folds = [folds[i] for i in self.options.fold_order]
        cells = [(arm, f) for arm in self.arms for f in folds]
        with tqdm(cells, desc="study", unit="cell", disable=self.options.quiet, position=0) as bar:
            for arm, fold in bar:
                bar.set_description(f"{arm.name} r{fold.repeat} f{fold.fold}")
                self.run_cell(arm, fold, data, costs)
        return self.finish(data, costs)

    def _write_stats(self, results: pd.DataFrame) -> None:
        """stats.json: every arm vs the baseline with CV-valid tests (skipped for a single arm)."""
        from harness.stats.compare import compare_run, write_stats

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
                model = self._build(arm, data)
            except HarnessError as exc:
                line = self.study.line_of(("arms", arm.name))
                where = f"{self.study.source}:{line}: " if line else ""
                raise HarnessError(f"{where}arms.{arm.name}: {exc}") from None
            cost = model_cost(model, data.images.channels, self.study.spec.dataset.image_size)
            costs[arm.name] = {"backbone": arm.backbone, "attention": arm.attention_name,
                               "attention_options": arm.attention_options, "params": cost.params,
                               "flops": cost.flops, "se_modules": len(cost.attention),
                               "notes": list(getattr(model, "harness_notes", []))}
        atomic_write_text(self.run_dir / "arms.json", json.dumps(costs, indent=1, default=str))
        return costs

    def _build(self, arm: Arm, data: PreparedData) -> torch.nn.Module:
        return build_model(self.registry, arm.backbone, arm.attention_name, arm.attention_options,
                           num_classes=data.num_classes, in_chans=data.images.channels,
                           image_size=self.study.spec.dataset.image_size, pretrained=arm.pretrained)

    def _done(self, cell: Path, fingerprint: str) -> bool:
        result = cell / RESULT_FILE
        if not result.exists():
            return False
        try:
            stored = json.loads(result.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return bool(stored.get("fingerprint") == fingerprint)

    def _run_cell(self, arm: Arm, fold: Any, data: PreparedData, cost: dict[str, Any]) -> dict[str, Any]:
        """Train and evaluate one cell (or reuse it when done with the same settings); its result."""
        cell = self.cell_dir(arm.name, fold.repeat, fold.fold)
        fingerprint = cell_fingerprint(self.study, arm)
        if self._done(cell, fingerprint):
            return dict(json.loads((cell / RESULT_FILE).read_text()))
        stored = cell / RESULT_FILE
        if stored.exists() or ((cell / "last.pt").exists() and not self._same_config(cell, fingerprint)):
            self.log(f"{arm.name} r{fold.repeat} f{fold.fold}: settings changed since it ran; training it again")
            for name in (RESULT_FILE, "last.pt", "best.pt"):
                (cell / name).unlink(missing_ok=True)
        cell.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cell / "fingerprint", fingerprint)
        device = resolve_device(arm.training.device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        trainer = self._trainer(arm, fold, data, cell, device)
        try:
            resumed = trainer.resume()
        except CorruptCheckpoint as exc:
            self.log(f"{cell / 'last.pt'} is corrupt ({exc}); restarting this fold from scratch")
            (cell / "last.pt").unlink(missing_ok=True)
            (cell / "best.pt").unlink(missing_ok=True)
            trainer = self._trainer(arm, fold, data, cell, device)
            resumed = ""
        if resumed:
            self.log(f"{arm.name} r{fold.repeat} f{fold.fold}: {resumed}")
        outcome = trainer.run()
        return self._write_cell(arm, fold, data, cell, fingerprint, outcome, cost)

    def _same_config(self, cell: Path, fingerprint: str) -> bool:
        try:
            return (cell / "fingerprint").read_text().strip() == fingerprint
        except OSError:
            return False

    def _trainer(self, arm: Arm, fold: Any, data: PreparedData, cell: Path, device: torch.device) -> FoldTrainer:
        from tqdm import tqdm

        # the same initial weights for every arm in a fold: only the architecture differs
        torch.manual_seed(seed_for(self.study.spec.seed, fold.repeat, fold.fold, "init"))
        model = self._build(arm, data).to(device)
        channels_last = device.type == "cuda" if arm.training.channels_last is None else arm.training.channels_last
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt_spec = arm.training.optimizer.model_dump()
        optimizer = self.registry.optimizer(opt_spec.pop("name")).build(model.parameters(), opt_spec)
        sched_spec = arm.training.scheduler.model_dump()
        scheduler = self.registry.scheduler(sched_spec.pop("name")).build(optimizer, sched_spec, arm.training.epochs)
        pixels, labels = data.images.pixels, torch.from_numpy(data.table.labels)
        x_train = pixels[torch.from_numpy(fold.train)]
        mean, std = normalization(x_train, data.images.channels, bool(arm.pretrained))
        test = torch.from_numpy(data.splits.test)

        def put(t: torch.Tensor) -> torch.Tensor:
            return t.to(device, non_blocking=True)

        x_val, x_test = pixels[torch.from_numpy(fold.val)], pixels[test]
        try:
            inputs = FoldInputs(
                x_train=put(x_train), y_train=put(labels[fold.train]),
                x_val=put(x_val), y_val=put(labels[fold.val]),
                x_test=put(x_test), y_test=put(labels[test]),
                mean=put(mean), std=put(std), in_chans=data.images.channels,
            )
        except torch.cuda.OutOfMemoryError:
            nbytes = sum(t.numel() for t in (x_train, x_val, x_test))
            power = min(3, max(0, (nbytes.bit_length() - 1) // 10))
            size = f"{nbytes / 1024**power:.1f} {['bytes', 'KiB', 'MiB', 'GiB'][power]}"
            raise FoldDataTooLarge(
                f"the fold's decoded images ({size} as uint8) do not fit in GPU memory beside the model; "
                "a smaller batch will not help: lower dataset.image_size, or --set training.device=cpu"
            ) from None
        epoch_bar = tqdm(total=arm.training.epochs, desc="epochs", unit="ep", leave=False,
                         disable=self.options.quiet, position=1)

        def on_epoch(row: dict[str, float]) -> None:
            epoch_bar.n = int(row["epoch"])
            epoch_bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_accuracy']:.3f}")
            if self.options.on_epoch is not None:
                self.options.on_epoch(arm, fold, row)

        return FoldTrainer(model, optimizer, scheduler, arm.training, self.study.spec.dataset.augment, inputs,
                           cell, seed_for(self.study.spec.seed, fold.repeat, fold.fold), device,
                           should_stop=lambda: self.interrupt.requested, on_epoch=on_epoch)

    def _write_cell(self, arm: Arm, fold: Any, data: PreparedData, cell: Path, fingerprint: str,
                    outcome: Any, cost: dict[str, Any]) -> dict[str, Any]:
        table, n_classes = data.table, data.num_classes
        frames = []
        metrics = {}
        for role, idx, probs in (("val", fold.val, outcome.val_probs), ("test", data.splits.test, outcome.test_probs)):
            if len(idx) == 0:
                continue
            y_true = table.labels[idx]
            role_metrics = classification_metrics(y_true, probs, n_classes)
            eps = 1e-12
            role_metrics["loss"] = float(-np.mean(np.log(probs[np.arange(len(idx)), y_true] + eps)))
            prefix = "" if role == "val" else "test_"
            metrics.update({prefix + k: v for k, v in role_metrics.items()})
            frame = pd.DataFrame({"arm": arm.name, "repeat": fold.repeat, "fold": fold.fold, "role": role,
                                  "sample_id": [table.sample_ids[i] for i in idx], "y_true": y_true,
                                  "y_pred": probs.argmax(1)})
            for c in range(n_classes):
                frame[f"p_{c}"] = probs[:, c]
            frames.append(frame)
        rates = baseline_rates(table.labels[fold.val], n_classes)
        flag = training_flag(outcome.history, outcome.best_epoch, rates["majority_rate"])
        atomic_write_text(cell / "history.csv", pd.DataFrame(outcome.history).to_csv(index=False))
        atomic_write_text(cell / "predictions.csv", pd.concat(frames).to_csv(index=False))
        result = {"arm": arm.name, "repeat": fold.repeat, "fold": fold.fold, "status": outcome.status,
                  **metrics, "epochs": outcome.epochs_run, "best_epoch": outcome.best_epoch,
                  "seconds": outcome.seconds, "n_train": len(fold.train), "n_val": len(fold.val),
                  "params": cost["params"], "flops": cost["flops"], "note": outcome.note,
                  **rates, "training_flag": flag,
                  "fingerprint": fingerprint}
        atomic_write_text(cell / RESULT_FILE, json.dumps(result, indent=1))  # written last: marks the cell done
        self.registry.hook().fold_finished(context=FoldContext(
            self.study.spec.name, self.run_dir, arm.name, fold.repeat, fold.fold,
            {k: v for k, v in metrics.items() if isinstance(v, float)}))
        if outcome.status != "ok":
            warnings.warn(f"{arm.name} r{fold.repeat} f{fold.fold}: {outcome.status}: {outcome.note}", stacklevel=2)
        elif flag:
            self.log(f"{arm.name} r{fold.repeat} f{fold.fold}: training flag: {flag}")
        return result

    def _cell_outputs(self, cell: Path) -> tuple[dict[str, Any], pd.DataFrame]:
        """A finished cell's result and predictions, read once per version of its result file."""
        stamp = (cell / RESULT_FILE).stat().st_mtime_ns
        cached = self._outputs.get(cell)
        if cached is None or cached[0] != stamp:
            result = json.loads((cell / RESULT_FILE).read_text())
            result.pop("fingerprint", None)
            cached = (stamp, result, pd.read_csv(cell / "predictions.csv"))
            self._outputs[cell] = cached
        return dict(cached[1]), cached[2]

    def _aggregate(self, data: PreparedData) -> pd.DataFrame:
        rows, predictions = [], []
        for arm in self.arms:
            fingerprint = cell_fingerprint(self.study, arm)
            for fold in data.splits.folds:
                cell = self.cell_dir(arm.name, fold.repeat, fold.fold)
                if not self._done(cell, fingerprint):
                    continue
                result, cell_predictions = self._cell_outputs(cell)
                rows.append(result)
                predictions.append(cell_predictions)
        results = pd.DataFrame(rows)
        atomic_write_text(self.run_dir / "results.csv", results.to_csv(index=False))
        if predictions:
            atomic_write_text(self.run_dir / "predictions.csv", pd.concat(predictions).to_csv(index=False))
        return results


def _git_commit(folder: Path) -> str:
    """The commit of the repository holding the study file, if it is in one ('' otherwise)."""
    import subprocess

    try:
        done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def run_study(study: LoadedStudy, registry: Registry, options: RunOptions) -> pd.DataFrame:
    return StudyRunner(study, registry, options).run()
