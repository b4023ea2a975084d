"""Train and evaluate one arm on one fold: selection on an inner split, best/last checkpoints, exact resume.

A fold's score never comes from data a choice was made on: early stopping and best-epoch
restore (``training.selection.rule: best``) watch the inner selection split carved from the
fold's training part; without one, the last epoch is scored. The fold's validation part is
evaluated every epoch for the curves only.

Sample order and augmentation draw from separate streams seeded by (fold seed, epoch)
(:mod:`harness.seeds`; augmentation's fold seed may differ, see ``cv.vary``); the augmentation generator is saved with mid-epoch checkpoints, so a
resumed fold reproduces an uninterrupted one exactly on CPU. Losses and accuracy are
accumulated on the device and read once per epoch. With ``training.ema`` the EMA weights
(:mod:`harness.run.training_options`) are what is evaluated, selected, saved and checkpointed.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.atomic import atomic_save_torch
from harness.data.augment import augment_batch, to_float
from harness.run.acceleration import GraphedStep, compiled, refuse_unsupported
from harness.run.determinism import amp_dtype
from harness.run.faults import kill_point
from harness.run.training_options import clip_gradients, ema_update, make_ema
from harness.rundir import Cell
from harness.seeds import stream_seed
from harness.study.schema import AugmentSpec, TrainingSpec

CHECKPOINT_VERSION = 3  # 2: separate order/augment streams, inner selection split; 3: cell identity, terminal state


class CorruptCheckpoint(Exception):
    """A checkpoint on disk that cannot be trusted."""


@dataclass
class FoldInputs:
    """One fold's tensors: uint8 images on the training device, labels, normalisation stats."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    in_chans: int
    x_inner: torch.Tensor | None = None  # the inner selection split (part of the fold's training part)
    y_inner: torch.Tensor | None = None

    @property
    def has_inner(self) -> bool:
        return self.y_inner is not None and len(self.y_inner) > 0


@dataclass
class FoldOutcome:
    status: str  # ok | diverged
    history: list[dict[str, float]]
    best_epoch: int  # best epoch on the inner split (-1 without one)
    epochs_run: int
    val_probs: np.ndarray
    test_probs: np.ndarray
    seconds: float
    note: str = ""
    scored_epoch: int = 0  # the epoch whose weights were scored


@dataclass
class _State:
    epoch: int = 0  # next epoch to run
    step: int = 0  # next step within that epoch
    best_value: float = math.nan
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    loss_sum: float = 0.0
    correct: int = 0
    seconds: float = 0.0
    data_seconds: float = 0.0
    terminal: str = ""  # "" while training; stopped | diverged | finished once the fold is over
    note: str = ""  # why it ended (early stop, divergence)


def prepare(x: torch.Tensor, inputs: FoldInputs, channels_last: bool) -> torch.Tensor:
    """A batch as the model takes it: float, its channel count, its memory format."""
    out = to_float(x, inputs.in_chans)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


class FoldTrainer:
    """Runs one fold; ``should_stop()`` is polled after every step (e.g. set by SIGINT)."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        training: TrainingSpec,
        augment: AugmentSpec,
        inputs: FoldInputs,
        cell_dir: Path,
        seed: int,
        device: torch.device,
        should_stop: Callable[[], bool] = lambda: False,
        on_epoch: Callable[[dict[str, float]], None] = lambda row: None,
        identity: str = "",
        augment_seed: int | None = None,
    ):
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.training, self.augment, self.inputs = training, augment, inputs
        self.cell_dir, self.seed, self.device = cell_dir, seed, device
        self.should_stop, self.on_epoch = should_stop, on_epoch
        self.identity = identity  # which cell (arm, repeat, fold, settings) the checkpoints belong to
        self.augment_seed = seed if augment_seed is None else augment_seed  # order draws from `seed`
        cuda = device.type == "cuda"
        self.amp_dtype = amp_dtype(device, training.amp)
        self.channels_last = cuda if training.channels_last is None else training.channels_last
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.mean = inputs.mean.view(1, -1, 1, 1)
        self.std = inputs.std.view(1, -1, 1, 1)
        self.minimize = training.early_stopping.monitor == "inner_loss"
        self.restore_best = training.selection.rule == "best"
        if (self.restore_best or training.early_stopping.patience) and not inputs.has_inner:
            raise ValueError("early stopping and selection.rule: best need the inner selection split in FoldInputs")
        self.ema = make_ema(model, training.ema)  # training.ema: these weights are selected, scored and saved
        refuse_unsupported(training, device, self.scaler is not None)
        self.forward: Callable[[torch.Tensor], torch.Tensor] = compiled(model) if training.compile else model
        self.graphed = GraphedStep(self._optimize, optimizer, training.batch_size) if training.cuda_graph else None
        self.state = _State()
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._resume_generator: torch.Tensor | None = None

    @property
    def scored_model(self) -> nn.Module:
        """The weights every evaluation uses: the EMA's when ``training.ema`` is on, else the model's."""
        return self.ema.module if self.ema is not None else self.model  # type: ignore[return-value]

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def last_path(self) -> Path:
        return Cell(self.cell_dir).last

    @property
    def best_path(self) -> Path:
        return Cell(self.cell_dir).best

    def _save(self, generator: torch.Generator | None) -> None:
        s = self.state
        atomic_save_torch(self.last_path, {
            "version": CHECKPOINT_VERSION, "cell": self.identity, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else {},
            "ema": self.scored_model.state_dict() if self.ema is not None else {},
            "state": {k: v for k, v in vars(s).items() if k != "history"}, "history": s.history,
            "torch_rng": torch.get_rng_state(),  # and the GPU's (dropout, drop-path draw there): exact resume on CUDA
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else torch.empty(0, dtype=torch.uint8),
            "generator": generator.get_state() if generator is not None else torch.empty(0, dtype=torch.uint8),
        })

    def resume(self) -> str:
        """Load the last checkpoint if there is one. Raises CorruptCheckpoint for one that is damaged."""
        if not self.last_path.exists():
            return ""
        from harness.models.weights import safe_torch_load, torch_refusal

        try:
            ckpt: Any = torch.load(self.last_path, map_location="cpu", weights_only=True)
            if ckpt.get("version") != CHECKPOINT_VERSION:
                raise CorruptCheckpoint("written by another checkpoint version")
            if ckpt.get("cell") != self.identity:
                raise CorruptCheckpoint(f"it belongs to cell {ckpt.get('cell')!r}, not {self.identity!r} "
                                        "(copied from another fold?); refused")
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            if self.scaler and ckpt["scaler"]:
                self.scaler.load_state_dict(ckpt["scaler"])
            if self.ema is not None:
                self.scored_model.load_state_dict(ckpt["ema"])
            self.state = _State(**ckpt["state"], history=list(ckpt["history"]))
            torch.set_rng_state(ckpt["torch_rng"])
            if self.device.type == "cuda" and ckpt.get("cuda_rng") is not None and ckpt["cuda_rng"].numel():
                torch.cuda.set_rng_state(ckpt["cuda_rng"], self.device)
            self._resume_generator = ckpt["generator"]
            if self.restore_best and self.state.best_epoch >= 0:
                best = safe_torch_load(self.best_path)
                assert isinstance(best, dict)
                self.best_weights = best
        except CorruptCheckpoint:
            raise
        except Exception as exc:  # truncated, tampered or mismatched: never trust it silently
            raise CorruptCheckpoint(f"{type(exc).__name__}: {torch_refusal(exc)}") from exc
        if self.state.terminal:
            return f"already {self.state.terminal} after epoch {self.state.epoch}; evaluating without training on"
        return f"resumed at epoch {self.state.epoch + 1}, step {self.state.step}"

    # -- training ----------------------------------------------------------------------------

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast("cuda", dtype=self.amp_dtype, cache_enabled=not self.training.cuda_graph)  # graphs: off

    def _epoch_generator(self, purpose: str, epoch: int) -> torch.Generator:
        """The epoch's ``order`` or ``augment`` stream, independent of each other and of every other epoch."""
        generator = torch.Generator()
        generator.manual_seed(stream_seed(self.augment_seed if purpose == "augment" else self.seed, purpose, epoch))
        return generator

    def run(self) -> FoldOutcome:
        """Train (from the resumed state), then score the selected weights on validation and test."""
        s, inputs = self.state, self.inputs
        n = len(inputs.y_train)
        batch = self.training.batch_size
        patience = self.training.early_stopping.patience
        while s.epoch < self.training.epochs and not s.terminal:
            order = torch.randperm(n, generator=self._epoch_generator("order", s.epoch)).to(self.device)
            generator = self._epoch_generator("augment", s.epoch)  # one copy per epoch, none per step
            saved = self._resume_generator
            if s.step > 0 and saved is not None and saved.numel():
                generator.set_state(saved)  # continue the augmentation draws where they stopped
            else:
                s.step, s.loss_sum, s.correct = 0, 0.0, 0
            self._resume_generator = None
            started = time.perf_counter()
            self.model.train()
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device, dtype=torch.long)
            steps = max(1, n // batch) if n % batch == 1 else math.ceil(n / batch)  # never a batch of 1 (BatchNorm)
            while s.step < steps:
                idx = order[s.step * batch:(s.step + 1) * batch if s.step < steps - 1 else n]
                self.train_step(idx, generator, loss_sum, correct)
                s.step += 1
                if self.should_stop() and s.step < steps:
                    s.loss_sum += float(loss_sum)
                    s.correct += int(correct)
                    s.seconds += time.perf_counter() - started
                    self._save(generator)
                    raise KeyboardInterrupt
            train_loss = (s.loss_sum + float(loss_sum)) / n
            train_acc = (s.correct + int(correct)) / n
            lr = float(self.optimizer.param_groups[0]["lr"])
            self.scheduler.step()
            row = {"epoch": s.epoch + 1, "train_loss": train_loss, "train_accuracy": train_acc}
            inner_loss = math.nan
            if inputs.has_inner:  # the only numbers any choice is made on
                assert inputs.x_inner is not None and inputs.y_inner is not None
                inner_loss, inner_probs = self.evaluate(inputs.x_inner, inputs.y_inner)
                inner_acc = float((inner_probs.argmax(1) == inputs.y_inner.cpu().numpy()).mean())
                row.update(inner_loss=inner_loss, inner_accuracy=inner_acc)
            val_loss, val_probs = self.evaluate(inputs.x_val, inputs.y_val)  # curves only: never drives a choice
            val_acc = float((val_probs.argmax(1) == inputs.y_val.cpu().numpy()).mean())
            s.seconds += time.perf_counter() - started
            row.update(val_loss=val_loss, val_accuracy=val_acc, lr=lr, seconds=s.seconds, data_seconds=s.data_seconds)
            s.history.append(row)
            Cell(self.cell_dir).write_history(s.history)  # live: the rows so far, replaced atomically each epoch
            s.epoch, s.step = s.epoch + 1, 0
            self.on_epoch(row)
            # divergence is read off the training loss, the inner split and the weights themselves:
            # never off the scored fold
            if not (math.isfinite(train_loss) and (math.isfinite(inner_loss) or not inputs.has_inner)
                    and self._weights_finite()):
                what = (f"loss became {train_loss}" if not math.isfinite(train_loss) else
                        f"inner loss became {inner_loss}" if inputs.has_inner and not math.isfinite(inner_loss)
                        else "weights became non-finite")
                s.terminal, s.note = "diverged", f"{what} at epoch {s.epoch}"
                self._save(None)
                kill_point("terminal-saved")
                break
            if inputs.has_inner:
                value = row["inner_loss"] if self.minimize else row["inner_accuracy"]
                delta = self.training.early_stopping.min_delta
                improved = s.best_epoch < 0 or (
                    value < s.best_value - delta if self.minimize else value > s.best_value + delta)
                if improved:
                    s.best_value, s.best_epoch, s.bad_epochs = value, s.epoch, 0
                    if self.restore_best:
                        self.best_weights = copy.deepcopy(self.scored_model.state_dict())
                        atomic_save_torch(self.best_path, self.best_weights)
                        kill_point("best-saved")
                else:
                    s.bad_epochs += 1
                if patience is not None and s.bad_epochs >= patience:
                    s.terminal, s.note = "stopped", f"early stop after epoch {s.epoch} (best inner epoch {s.best_epoch})"
            if not s.terminal and s.epoch >= self.training.epochs:
                s.terminal = "finished"
            self._save(None)  # the terminal state is saved with the weights: a rerun never trains on
            if s.terminal:
                kill_point("terminal-saved")
                break
            if self.should_stop():
                raise KeyboardInterrupt
        scored_epoch = s.epoch
        if self.restore_best and self.best_weights is not None:
            self.scored_model.load_state_dict(self.best_weights)
            scored_epoch = s.best_epoch
        else:  # best.pt always holds the scored weights (here: the last epoch's)
            atomic_save_torch(self.best_path, self.scored_model.state_dict())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, val_probs = self.evaluate(inputs.x_val, inputs.y_val)
            _, test_probs = self.evaluate(inputs.x_test, inputs.y_test)
        status = "diverged" if s.terminal == "diverged" else "ok"
        return FoldOutcome(status, s.history, s.best_epoch, s.epoch, val_probs, test_probs, s.seconds, s.note,
                           scored_epoch)

    def _weights_finite(self) -> bool:
        """Whether every weight and float buffer (BatchNorm statistics) is finite; one device sync."""
        tensors = [t for t in (*self.model.parameters(), *self.model.buffers()) if t.is_floating_point()]
        return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())

    def train_step(self, idx: torch.Tensor, generator: torch.Generator, loss_sum: torch.Tensor,
                   correct: torch.Tensor) -> None:
        """One optimisation step on training samples ``idx``; sums stay on the device (no host sync)."""
        data_start = time.perf_counter()
        inputs = self.inputs
        x = prepare(inputs.x_train[idx], inputs, self.channels_last)
        x = self._normalize(augment_batch(x, self.augment, generator))
        y = inputs.y_train[idx]
        self.state.data_seconds += time.perf_counter() - data_start
        loss, logits = (self.graphed or self._optimize)(x, y)
        ema_update(self.ema, self.model)
        loss_sum += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == y).sum()

    def _optimize(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward, loss, backward, optimizer step on a prepared batch; the loss and logits."""
        with self._autocast():
            logits = self.forward(x)
            loss = F.cross_entropy(logits, y, label_smoothing=self.training.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(loss).backward()
            if self.training.clip_grad is not None:
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
            clip_gradients(self.model.parameters(), self.training.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            clip_gradients(self.model.parameters(), self.training.clip_grad)
            self.optimizer.step()
        return loss, logits

    @torch.inference_mode()
    def evaluate(self, x_all: torch.Tensor, y_all: torch.Tensor) -> tuple[float, np.ndarray]:
        """Mean loss and class probabilities over a uint8 tensor, in evaluation mode."""
        if len(y_all) == 0:
            return math.nan, np.zeros((0, 0), dtype=np.float32)
        model = self.scored_model
        model.eval()
        probs, loss_sum = [], torch.zeros((), device=self.device)
        batch = max(self.training.batch_size, 64)
        for start in range(0, len(y_all), batch):
            x = self._normalize(prepare(x_all[start:start + batch], self.inputs, self.channels_last))
            y = y_all[start:start + batch]
            with self._autocast():
                logits = model(x).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            probs.append(torch.softmax(logits, 1))
        return float(loss_sum) / len(y_all), torch.cat(probs).cpu().numpy()
