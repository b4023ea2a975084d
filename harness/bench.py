"""``harness bench``: harness train-step throughput against a bare hand-written PyTorch loop on the
same model, batches and device, interleaved so the ratio holds on a noisy machine; for an attention
variant also the plain backbone (``attention_ratio``); inference throughput, peak memory and the
host time spent preparing batches (``data_share``) too. ``harness bench data STUDY`` reports the data pipeline's share."""

from __future__ import annotations

import copy
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.models.build import build_model
from harness.registry import Registry
from harness.run import determinism
from harness.run.determinism import resolve_device
from harness.run.trainer import FoldInputs, FoldTrainer
from harness.rundir import RunDir
from harness.study.schema import AugmentSpec, TrainingSpec


@dataclass(frozen=True)
class BenchConfig:
    backbone: str = "resnet50"
    attention: str | None = None  # None: the registry's "no attention" variant
    attention_options: tuple[tuple[str, Any], ...] = ()
    image_size: int = 224
    batch_size: int = 64
    steps: int = 50
    warmup: int = 5
    device: str = "auto"
    amp: bool | None = None
    channels_last: bool | None = None
    compile: bool = False  # the harness step as training.compile; the bare loops through torch.compile
    cuda_graph: bool = False  # the harness step as training.cuda_graph (CUDA only); the bare loops stay eager
    augment: bool = False
    classes: int = 10
    in_chans: int = 3
    rounds: int = 5
    deterministic: bool = True  # as a study's training.deterministic (GPU only)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


Loop = Callable[[int, int], float]


def _build(config: BenchConfig, registry: Registry, attention: str, options: dict[str, Any],
           device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return build_model(registry, config.backbone, attention, options, num_classes=config.classes,
                       in_chans=config.in_chans, image_size=config.image_size).to(device)


def _interleaved(loops: dict[str, Loop], rounds: int, per_round: int) -> dict[str, float]:
    """Total seconds per loop over ``rounds``, the order rotated each round so drift hits all alike."""
    totals = dict.fromkeys(loops, 0.0)
    names = list(loops)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            totals[name] += loops[name](per_round, r * per_round)
    return totals


def _profile_table(loop: Loop, device: torch.device, steps: int) -> str:
    """The torch profiler's busiest operators over ``steps`` harness steps (forward and backward)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        loop(steps, 0)
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return str(prof.key_averages().table(sort_by=sort_by, row_limit=20))


def run_bench(config: BenchConfig, registry: Registry, *, profile_steps: int = 0) -> dict[str, Any]:
    """Time the harness step, a bare loop on a copy of the same model and, for an attention
    variant, a bare loop on the plain backbone, all on the same batches in interleaved rounds."""
    device = resolve_device(config.device)
    determinism.configure(config.deterministic, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    plain = registry.defaults.identity_attention
    if config.attention is None:
        config = replace(config, attention=registry.identity_attention())
    model = _build(config, registry, str(config.attention), dict(config.attention_options), device)
    optimizer_info = registry.optimizer(registry.default("optimizers"))  # the default optimizer, its own defaults
    training = TrainingSpec(batch_size=config.batch_size, amp=config.amp, channels_last=config.channels_last,
                            optimizer={"name": optimizer_info.name, "lr": 0.01}, compile=config.compile,
                            cuda_graph=config.cuda_graph)
    n = config.batch_size * max(config.steps, config.warmup)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, config.in_chans, config.image_size, config.image_size), dtype=torch.uint8,
                      generator=generator).to(device)
    y = torch.randint(0, config.classes, (n,), generator=generator).to(device)
    mean = torch.full((config.in_chans,), 0.5, device=device)
    std = torch.full((config.in_chans,), 0.25, device=device)
    inputs = FoldInputs(x, y, x[:0], y[:0], x[:0], y[:0], mean, std, config.in_chans)
    optimizer = optimizer_info.build(model.parameters(), {"lr": 0.01})
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        augment = AugmentSpec.model_validate("standard" if config.augment else "none")
        trainer = FoldTrainer(model, optimizer, scheduler, training, augment, inputs, Path(tmp), 0, device)
    batches = [torch.arange(i * config.batch_size, (i + 1) * config.batch_size, device=device)
               for i in range(n // config.batch_size)]

    def ready(net: nn.Module, compile_it: bool = config.compile) -> nn.Module:
        net.train()
        if trainer.channels_last:
            net.to(memory_format=torch.channels_last)
        return torch.compile(net) if compile_it else net  # type: ignore[return-value]

    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    bare_model = copy.deepcopy(model)
    trainer.model = ready(model, compile_it=False)  # the trainer compiles its own forward (training.compile)

    def harness_steps(count: int, offset: int) -> float:
        _sync(device)
        start = time.perf_counter()
        for i in range(count):
            trainer.train_step(batches[(offset + i) % len(batches)], generator, loss_sum, correct)
        _sync(device)
        return time.perf_counter() - start

    def bare_loop(net: nn.Module) -> Loop:
        """The loop a user would write by hand: index, to float, normalise, forward, loss, backward, step."""
        net = ready(net)
        bare_optimizer = optimizer_info.build(net.parameters(), {"lr": 0.01})

        def steps(count: int, offset: int) -> float:
            _sync(device)
            start = time.perf_counter()
            for i in range(count):
                idx = batches[(offset + i) % len(batches)]
                xb = (x[idx].float().div_(255) - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
                if trainer.channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                with trainer._autocast():
                    loss = F.cross_entropy(net(xb), y[idx])
                bare_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                bare_optimizer.step()
            _sync(device)
            return time.perf_counter() - start

        return steps

    loops: dict[str, Loop] = {"harness": harness_steps, "bare": bare_loop(bare_model)}
    if plain is not None and config.attention != plain:
        loops["plain"] = bare_loop(_build(config, registry, plain, {}, device))
    first_steps = {name: loop(config.warmup, 0) for name, loop in loops.items()}  # with compilation and capture
    trainer.state.data_seconds = 0.0
    per_round = max(1, config.steps // config.rounds)
    seconds = _interleaved(loops, config.rounds, per_round)
    images = per_round * config.rounds * config.batch_size
    trainer.evaluate(x, y)  # warm-up: cudnn autotuning and, with --compile, the evaluation graphs
    _sync(device)
    start = time.perf_counter()
    trainer.evaluate(x, y)
    _sync(device)
    infer_time = time.perf_counter() - start
    result: dict[str, Any] = {
        "backbone": config.backbone, "attention": config.attention, "attention_options": dict(config.attention_options),
        "image_size": config.image_size, "batch_size": config.batch_size, "steps": per_round * config.rounds,
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "amp": str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "off",
        "channels_last": trainer.channels_last, "compile": config.compile, "augment": config.augment,
        "deterministic": config.deterministic, "cuda_graph": config.cuda_graph,
        "first_steps_seconds": first_steps["harness"],  # the warm-up steps: compile time and graph capture land here
        "steady_step_seconds": seconds["harness"] / (per_round * config.rounds),
        "train_img_s": images / seconds["harness"], "bare_train_img_s": images / seconds["bare"],
        "overhead_ratio": seconds["bare"] / seconds["harness"],
        "data_share": trainer.state.data_seconds / seconds["harness"],
        "infer_img_s": n / infer_time, "peak_mem_mb": _peak_mb(device),
        "config": asdict(config) | {"attention_options": dict(config.attention_options)},
    }
    if "plain" in seconds:  # both bare loops: the attention's own cost, free of any harness overhead
        result["plain_train_img_s"] = images / seconds["plain"]
        result["attention_ratio"] = seconds["plain"] / seconds["bare"]
    if profile_steps:
        result["profile"] = _profile_table(harness_steps, device, profile_steps)
    return result


def data_share(run_dir: Path) -> list[dict[str, Any]]:
    """Per arm: data-preparation time as a share of training time, for epochs after the first (``None``: the
    arm trained no epoch after the first, so there is nothing to measure)."""
    import pandas as pd

    rows = []
    run = RunDir(run_dir).run_info()
    for arm_dir in RunDir(run_dir).arm_folders():
        histories = RunDir(run_dir).histories(arm_dir.name)
        later = pd.concat([h.assign(epoch_seconds=h.seconds.diff(), epoch_data=h.data_seconds.diff()).iloc[1:]
                           for h in histories])
        rows.append({"arm": arm_dir.name, "epochs_measured": len(later),
                     "data_share": float(later.epoch_data.sum() / later.epoch_seconds.sum()) if len(later) else None,
                     "decode_seconds_for_whole_study": run["timings"]["decode"]})
    return rows


def run_fusion_bench(config: BenchConfig, registry: Registry, cells: int) -> dict[str, Any]:
    """``harness bench --fuse K``: K cells of one arm trained one after another (the harness step, as
    ``harness run`` does today) against the same K cells fused into one (:mod:`harness.run.fusion`), on
    the same device and batches (each cell its own indices), in interleaved rounds."""
    from harness.errors import HarnessError
    from harness.run.fusion import FusedCells

    if cells < 1 or config.augment or config.compile:
        raise HarnessError("harness bench --fuse K needs K >= 1 and times the plain step: drop --augment and --compile")
    if config.attention is None:
        config = replace(config, attention=registry.identity_attention())
    attention = str(config.attention)
    device = resolve_device(config.device)
    determinism.configure(config.deterministic, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # both paths step torch's SGD (below): the trainer takes the optimizer it is given, not the spec's name
    training = TrainingSpec(batch_size=config.batch_size, amp=config.amp, channels_last=config.channels_last)
    per_cell = max(config.steps, config.warmup)
    n = config.batch_size * per_cell * cells
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, config.in_chans, config.image_size, config.image_size), dtype=torch.uint8,
                      generator=generator).to(device)
    y = torch.randint(0, config.classes, (n,), generator=generator).to(device)
    mean = torch.full((config.in_chans,), 0.5, device=device).view(1, -1, 1, 1)
    std = torch.full((config.in_chans,), 0.25, device=device).view(1, -1, 1, 1)
    inputs = FoldInputs(x, y, x[:0], y[:0], x[:0], y[:0], mean.flatten(), std.flatten(), config.in_chans)
    order = torch.randperm(n, generator=generator).to(device)  # cell k: its own indices, step by step
    batches = order.view(per_cell, cells, config.batch_size)
    options = dict(config.attention_options)

    def sgd(net: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    trainers = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(cells):
            model = _build(config, registry, attention, options, device).train()
            optimizer = sgd(model)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
            trainers.append(FoldTrainer(model, optimizer, scheduler, training, AugmentSpec.model_validate("none"),
                                        inputs, Path(tmp), 0, device))
    for trainer in trainers:
        if trainer.channels_last:
            trainer.model.to(memory_format=torch.channels_last)
    fused_models = [_build(config, registry, attention, options, device).train() for _ in range(cells)]
    fused = FusedCells(fused_models, [sgd(m) for m in fused_models], amp_dtype=trainers[0].amp_dtype)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)

    def timed(step: Callable[[int], None]) -> Loop:
        def steps(count: int, offset: int) -> float:
            _sync(device)
            start = time.perf_counter()
            for i in range(count):
                step((offset + i) % per_cell)
            _sync(device)
            return time.perf_counter() - start

        return steps

    def sequential(i: int) -> None:
        for k, trainer in enumerate(trainers):
            trainer.train_step(batches[i, k], generator, loss_sum, correct)

    def fused_step(i: int) -> None:
        idx = batches[i]  # (K, B): the same images and labels the cells take one after another
        xb = (x[idx.flatten()].float().div_(255) - mean) / std
        fused.step(xb.view(cells, config.batch_size, *xb.shape[1:]), y[idx])

    loops = {"sequential": timed(sequential), "fused": timed(fused_step)}
    for loop in loops.values():
        loop(config.warmup, 0)
    per_round = max(1, config.steps // config.rounds)
    seconds = _interleaved(loops, config.rounds, per_round)
    images = per_round * config.rounds * config.batch_size * cells
    amp = trainers[0].amp_dtype
    return {
        "backbone": config.backbone, "attention": config.attention, "attention_options": options,
        "image_size": config.image_size, "batch_size": config.batch_size, "cells": cells,
        "steps_per_cell": per_round * config.rounds, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "amp": str(amp).replace("torch.", "") if amp else "off",
        "channels_last_sequential": trainers[0].channels_last, "channels_last_fused": False,  # vmap: (K, B, C, H, W)
        "deterministic": config.deterministic,
        "sequential_img_s": images / seconds["sequential"], "fused_img_s": images / seconds["fused"],
        "fusion_speedup": seconds["sequential"] / seconds["fused"], "peak_mem_mb": _peak_mb(device),
    }
