"""``harness bench``: harness train-step throughput against a bare hand-written PyTorch loop on the
same model, batches and device, interleaved so the ratio holds on a noisy machine; inference
throughput and peak memory too. ``harness bench data STUDY`` reports the data pipeline's share."""

from __future__ import annotations

import copy
import resource
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from harness.models import build_model
from harness.plugins import Registry
from harness.runner import resolve_device
from harness.schema import AugmentSpec, TrainingSpec
from harness.train import FoldInputs, FoldTrainer


@dataclass(frozen=True)
class BenchConfig:
    backbone: str = "resnet50"
    attention: str = "none"
    attention_options: tuple[tuple[str, Any], ...] = ()
    image_size: int = 224
    batch_size: int = 64
    steps: int = 50
    warmup: int = 5
    device: str = "auto"
    amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False
    augment: bool = False
    classes: int = 10
    in_chans: int = 3
    rounds: int = 5


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_bench(config: BenchConfig, registry: Registry) -> dict[str, Any]:
    device = resolve_device(config.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    model = build_model(registry, config.backbone, config.attention, dict(config.attention_options),
                        num_classes=config.classes, in_chans=config.in_chans, image_size=config.image_size).to(device)
    training = TrainingSpec(batch_size=config.batch_size, amp=config.amp, channels_last=config.channels_last,
                            optimizer={"name": "sgd", "lr": 0.01, "momentum": 0.9})
    bare_model = copy.deepcopy(model)
    n = config.batch_size * max(config.steps, config.warmup)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, config.in_chans, config.image_size, config.image_size), dtype=torch.uint8,
                      generator=generator).to(device)
    y = torch.randint(0, config.classes, (n,), generator=generator).to(device)
    mean = torch.full((config.in_chans,), 0.5, device=device)
    std = torch.full((config.in_chans,), 0.25, device=device)
    inputs = FoldInputs(x, y, x[:0], y[:0], x[:0], y[:0], mean, std, config.in_chans)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = FoldTrainer(model, optimizer, scheduler, training, AugmentSpec(enabled=config.augment),
                              inputs, Path(tmp), 0, device)
    if trainer.channels_last:
        model.to(memory_format=torch.channels_last)
        bare_model.to(memory_format=torch.channels_last)
    if config.compile:
        trainer.model = torch.compile(model)  # type: ignore[assignment]
        bare_model = torch.compile(bare_model)  # type: ignore[assignment]
    bare_optimizer = torch.optim.SGD(bare_model.parameters(), lr=0.01, momentum=0.9)
    batches = [torch.arange(i * config.batch_size, (i + 1) * config.batch_size, device=device)
               for i in range(n // config.batch_size)]
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    model.train()
    bare_model.train()

    def harness_steps(count: int, offset: int) -> float:
        _sync(device)
        start = time.perf_counter()
        for i in range(count):
            trainer.train_step(batches[(offset + i) % len(batches)], generator, loss_sum, correct)
        _sync(device)
        return time.perf_counter() - start

    def bare_steps(count: int, offset: int) -> float:
        """The loop a user would write by hand: index, to float, normalise, forward, loss, backward, step."""
        _sync(device)
        start = time.perf_counter()
        for i in range(count):
            idx = batches[(offset + i) % len(batches)]
            xb = (x[idx].float().div_(255) - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
            if trainer.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with trainer._autocast():
                loss = F.cross_entropy(bare_model(xb), y[idx])
            bare_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            bare_optimizer.step()
        _sync(device)
        return time.perf_counter() - start

    harness_steps(config.warmup, 0)
    bare_steps(config.warmup, 0)
    per_round = max(1, config.steps // config.rounds)
    harness_time = bare_time = 0.0
    for r in range(config.rounds):  # interleaved, alternating which goes first
        first, second = (harness_steps, bare_steps) if r % 2 == 0 else (bare_steps, harness_steps)
        t_first, t_second = first(per_round, r * per_round), second(per_round, r * per_round)
        harness_time += t_first if first is harness_steps else t_second
        bare_time += t_second if first is harness_steps else t_first
    images = per_round * config.rounds * config.batch_size
    _sync(device)
    start = time.perf_counter()
    trainer.evaluate(x, y)
    _sync(device)
    infer_time = time.perf_counter() - start
    return {
        "backbone": config.backbone, "attention": config.attention, "attention_options": dict(config.attention_options),
        "image_size": config.image_size, "batch_size": config.batch_size, "steps": per_round * config.rounds,
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "amp": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "off",
        "channels_last": trainer.channels_last, "compile": config.compile, "augment": config.augment,
        "train_img_s": images / harness_time, "bare_train_img_s": images / bare_time,
        "overhead_ratio": bare_time / harness_time, "infer_img_s": n / infer_time, "peak_mem_mb": _peak_mb(device),
        "config": asdict(config) | {"attention_options": dict(config.attention_options)},
    }


def data_share(run_dir: Path) -> list[dict[str, Any]]:
    """Per arm: data-preparation time as a share of training time, for epochs after the first."""
    import json

    import pandas as pd

    rows = []
    run = json.loads((run_dir / "run.json").read_text())
    for arm_dir in sorted((run_dir / "cells").iterdir()):
        histories = [pd.read_csv(p) for p in sorted(arm_dir.glob("*/history.csv"))]
        later = pd.concat([h.assign(epoch_seconds=h.seconds.diff(), epoch_data=h.data_seconds.diff()).iloc[1:]
                           for h in histories])
        rows.append({"arm": arm_dir.name, "epochs_measured": len(later),
                     "data_share": float(later.epoch_data.sum() / later.epoch_seconds.sum()) if len(later) else float("nan"),
                     "decode_seconds_for_whole_study": run["timings"]["decode"]})
    return rows
