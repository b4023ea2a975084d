"""CUDA paths: run where a GPU is present (a lent GPU machine), skipped on the CPU-only CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from harness.cli.main import main
from harness.models.build import build_model
from harness.run.trainer import FoldInputs, FoldTrainer
from harness.study.schema import AugmentSpec, TrainingSpec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_train_steps_never_wait_for_the_gpu(tmp_path: Path, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    """bf16 autocast, channels_last, every augmentation, RGB-to-gray and the fused SE, with CUDA's
    sync debug mode set to raise on any host synchronisation inside the steps."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = build_model(builtin_registry, "resnet20", "se", {"reduction": 4}, num_classes=3, in_chans=1,
                        image_size=32).to(device)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, device=device)
    y = torch.randint(0, 3, (64,), device=device)
    stats = torch.tensor([0.5], device=device), torch.tensor([0.25], device=device)
    inputs = FoldInputs(x, y, x[:0], y[:0], x[:0], y[:0], *stats, in_chans=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    augment = AugmentSpec(vflip=0.5, rotate=20, scale=(0.8, 1.0), translate=0.1, brightness=0.2, contrast=0.2)
    trainer = FoldTrainer(model, optimizer, scheduler, TrainingSpec(batch_size=16), augment, inputs, tmp_path, 0, device)
    assert trainer.amp_dtype == torch.bfloat16 and trainer.channels_last
    model.to(memory_format=torch.channels_last)
    order = torch.randperm(64, generator=torch.Generator().manual_seed(0)).to(device)
    generator = torch.Generator().manual_seed(0)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    trainer.train_step(order[:16], generator, loss_sum, correct)  # warm-up: cuDNN and allocator set-up
    torch.cuda.synchronize()
    sums = [(loss_sum.clone(), correct.clone())]  # device-side copies: no host synchronisation
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(1, 4):
            trainer.train_step(order[16 * step:16 * (step + 1)], generator, loss_sum, correct)
            sums.append((loss_sum.clone(), correct.clone()))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    # each step adds its 16 samples' summed cross-entropy (about 16 ln 3 for 3 random classes) and at most 16 hits
    for (loss_before, hits_before), (loss_after, hits_after) in zip(sums, sums[1:], strict=True):
        assert 0.3 < float(loss_after - loss_before) / 16 < 3.0
        assert 0 <= int(hits_after - hits_before) <= 16


def test_bench_on_cuda_uses_bf16_and_channels_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--backbone", "resnet20", "--attention", "{name: se, reduction: 4}", "--image-size", "32",
                 "--batch-size", "32", "--steps", "10", "--device", "cuda", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["amp"], result["channels_last"], result["device"]) == ("bfloat16", True, "cuda")
    assert result["train_img_s"] > 0 and result["attention_ratio"] > 0
