"""One fold's training on a tiny real problem: it learns, records every epoch, saves its weights, and a
diverging fold is marked as such instead of producing numbers."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from harness.run.trainer import FoldInputs, FoldTrainer
from harness.study.schema import AugmentSpec, TrainingSpec


def _bright_or_dark(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 1 images are bright, class 0 dark, with noise: a 1-channel 8x8 problem a small net solves."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    noise = torch.randint(0, 60, (n, 1, 8, 8), generator=generator)
    return (40 + 120 * labels.view(-1, 1, 1, 1) + noise).to(torch.uint8), labels


def _fold(tmp_path: Path, lr: float) -> FoldTrainer:
    (x, y), (xv, yv) = _bright_or_dark(32, 0), _bright_or_dark(12, 1)
    inputs = FoldInputs(x, y, xv, yv, xv[:4], yv[:4], torch.tensor([0.5]), torch.tensor([0.25]), 1)
    training = TrainingSpec.model_validate({"epochs": 6, "batch_size": 8, "optimizer": {"name": "sgd", "lr": lr},
                                            "scheduler": {"name": "constant"}})
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    return FoldTrainer(model, optimizer, scheduler, training, AugmentSpec(), inputs, tmp_path, seed=0,
                       device=torch.device("cpu"), identity="test")


def test_a_fold_learns_records_each_epoch_and_scores_validation(tmp_path: Path) -> None:
    outcome = _fold(tmp_path, lr=0.2).run()
    assert outcome.status == "ok" and outcome.epochs_run == 6 and len(outcome.history) == 6
    assert outcome.history[-1]["train_loss"] < outcome.history[0]["train_loss"]
    assert outcome.val_probs.shape == (12, 2) and outcome.test_probs.shape == (4, 2)
    assert (outcome.val_probs.argmax(1) == _bright_or_dark(12, 1)[1].numpy()).mean() == 1.0
    assert (tmp_path / "last.pt").exists()


def test_a_diverging_fold_is_marked_diverged(tmp_path: Path) -> None:
    outcome = _fold(tmp_path, lr=1e12).run()
    assert outcome.status == "diverged" and outcome.epochs_run < 6
