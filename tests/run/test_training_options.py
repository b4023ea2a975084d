"""training.warmup, training.clip_grad and training.ema: each does what it says, on a tiny real trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from harness import rundir as files
from harness.errors import HarnessError
from harness.registry import build_registry, make_plugin_manager
from harness.run.trainer import FoldInputs, FoldTrainer
from harness.run.training_options import build_scheduler, with_warmup
from harness.study.schema import AugmentSpec, TrainingSpec, WarmupSpec

REGISTRY = build_registry(*make_plugin_manager(["harness_plugins.optim.plugin"], entry_points=False))


def _training(**options: Any) -> TrainingSpec:
    return TrainingSpec.model_validate({"epochs": 3, "batch_size": 8, "threads": 1,
                                        "optimizer": {"name": "sgd", "lr": 0.5},
                                        "scheduler": {"name": "constant"}, **options})


def _lrs(training: TrainingSpec) -> list[float]:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=training.optimizer.lr)
    scheduler = build_scheduler(REGISTRY, optimizer, training)
    lrs = []
    for _ in range(training.epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_warmup_ramps_linearly_then_the_declared_scheduler_covers_the_remaining_epochs() -> None:
    lrs = _lrs(_training(epochs=6, warmup={"epochs": 2, "start_factor": 0.1}, scheduler={"name": "cosine"}))
    # 0.5 x (0.1, 0.55), then cosine over the 4 epochs left (T_max = 4, not 6): 1, (1 + cos(pi/4)) / 2, 1/2, ...
    assert lrs == pytest.approx([0.05, 0.275, 0.5, 0.4267767, 0.25, 0.0732233])
    assert _lrs(_training(epochs=6, scheduler={"name": "cosine"}))[0] == 0.5  # off by default


def test_warmup_refuses_a_metric_stepped_scheduler() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(HarnessError, match="training.warmup cannot go before scheduler 'plateau': ReduceLROnPlateau"):
        with_warmup(optimizer, plateau, WarmupSpec(epochs=1), "plateau")  # type: ignore[arg-type]


def test_warmup_must_leave_epochs_for_the_scheduler() -> None:
    with pytest.raises(ValidationError, match=r"warmup.epochs \(3\) must be below epochs \(3\)"):
        _training(warmup={"epochs": 3})


def _inputs(n: int = 16) -> FoldInputs:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator)
    y = torch.arange(n) % 2
    return FoldInputs(x, y, x[:6], y[:6], x[:6], y[:6], torch.tensor([0.5]), torch.tensor([0.25]), 1)


def _trainer(tmp_path: Path, training: TrainingSpec, should_stop: Any = lambda: False) -> FoldTrainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=training.optimizer.lr, momentum=0.9)
    return FoldTrainer(model, optimizer, build_scheduler(REGISTRY, optimizer, training), training, AugmentSpec(),
                       _inputs(), tmp_path, seed=0, device=torch.device("cpu"), should_stop=should_stop, identity="t")


def _grad_norm(model: nn.Module) -> float:
    return float(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm())


@pytest.mark.parametrize("scaled", [False, True])
def test_clip_grad_bounds_the_gradient_norm_of_each_step(tmp_path: Path, scaled: bool) -> None:
    """Also under a GradScaler (float16 AMP): the true gradients are clipped, not the scaled ones."""
    def step_norm(training: TrainingSpec) -> float:
        trainer = _trainer(tmp_path, training)
        if scaled:
            trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        zero = torch.zeros((), dtype=torch.long)
        trainer.train_step(torch.arange(8), torch.Generator().manual_seed(0), torch.zeros(()), zero)
        return _grad_norm(trainer.model)  # the gradients the optimizer stepped with

    assert step_norm(_training()) > 0.01  # without clipping this step's gradient is larger ...
    assert step_norm(_training(clip_grad={"max_norm": 0.01})) == pytest.approx(0.01, rel=1e-4)  # ... and is clipped


def test_ema_weights_follow_the_formula_and_are_what_is_evaluated(tmp_path: Path) -> None:
    decay = 0.8
    trainer = _trainer(tmp_path, _training(ema={"decay": decay}))
    expected = {k: v.clone().float() for k, v in trainer.model.state_dict().items()}
    zero = torch.zeros((), dtype=torch.long)
    for step in range(3):
        trainer.train_step(torch.arange(8) + step, torch.Generator().manual_seed(step), torch.zeros(()), zero)
        for key, value in trainer.model.state_dict().items():
            if value.is_floating_point():  # ema = decay * ema + (1 - decay) * weights, buffers included
                expected[key] = decay * expected[key] + (1 - decay) * value
    ema = trainer.scored_model.state_dict()
    for key, value in expected.items():
        if value.is_floating_point() and ema[key].is_floating_point():
            torch.testing.assert_close(ema[key], value, rtol=1e-5, atol=1e-6)
    raw = trainer.model.get_parameter("0.weight")
    assert not torch.allclose(ema["0.weight"], raw)
    x, y = trainer.inputs.x_val, trainer.inputs.y_val
    _, scored = trainer.evaluate(x, y)
    trainer.ema = None  # the raw weights score differently: evaluate used the EMA's
    _, plain = trainer.evaluate(x, y)
    assert not torch.allclose(torch.from_numpy(scored), torch.from_numpy(plain))


def test_a_stopped_and_resumed_fold_equals_an_uninterrupted_one_with_ema_warmup_and_clipping(tmp_path: Path) -> None:
    training = _training(epochs=3, warmup={"epochs": 1}, clip_grad={"max_norm": 0.5}, ema={"decay": 0.7})
    reference = _trainer(tmp_path / "reference", training).run()
    calls = {"n": 0}

    def stop_once_mid_epoch() -> bool:  # Ctrl-C after the 3rd step: a checkpoint inside epoch 2
        calls["n"] += 1
        return calls["n"] == 3

    (tmp_path / "resumed").mkdir()
    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path / "resumed", training, stop_once_mid_epoch).run()
    resumed = _trainer(tmp_path / "resumed", training)
    assert resumed.resume().startswith("resumed at epoch 2")
    outcome = resumed.run()
    strip = [{k: v for k, v in row.items() if k not in ("seconds", "data_seconds")} for row in outcome.history]
    assert strip == [{k: v for k, v in row.items() if k not in ("seconds", "data_seconds")} for row in reference.history]
    assert (outcome.test_probs == reference.test_probs).all()
    best = torch.load(tmp_path / "resumed" / files.BEST, weights_only=True)
    torch.testing.assert_close(best["0.weight"], resumed.scored_model.state_dict()["0.weight"])  # best.pt: EMA weights


def test_options_change_the_cell_fingerprint(write_study) -> None:  # type: ignore[no-untyped-def]
    from harness.run.fingerprint import cell_fingerprint
    from harness.study.loader import load_study

    def fingerprint(update: dict[str, Any]) -> str:
        study = load_study(write_study({"training": update}))
        return cell_fingerprint(study, study.arms["plain"])

    off = fingerprint({})
    for option in ({"warmup": {"epochs": 1}}, {"clip_grad": {"max_norm": 1.0}}, {"ema": {"decay": 0.99}}):
        assert fingerprint(option) != off, option  # a stored cell is not reused for a run that asks for it


@pytest.mark.slow
def test_study_run_records_and_applies_the_options(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """End to end: history.csv's lr follows the warmup ramp; resolved study and protocol line name all three."""
    import pandas as pd
    import yaml

    from harness.cli.main import main
    from harness.report.render import protocol_text

    options = {"epochs": 2, "warmup": {"epochs": 1, "start_factor": 0.1}, "clip_grad": {"max_norm": 1.0},
               "ema": {"decay": 0.9}}
    study = write_study({"training": options}, arms={"plain": {"backbone": "resnet20", "attention": "none"}})
    out = tmp_path / "out"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    histories = sorted((out / files.CELLS).glob(f"plain/*/{files.HISTORY}"))
    assert len(histories) == 2
    for history in histories:  # lr 0.05: 0.1 x, then the step scheduler's first epoch (the full lr)
        assert pd.read_csv(history)["lr"].tolist() == pytest.approx([0.005, 0.05])
    resolved = yaml.safe_load((out / files.STUDY).read_text())
    assert resolved["arms"]["plain"]["training"]["ema"] == {"decay": 0.9}
    text = protocol_text(resolved)
    assert "lr warmup: 1 epoch from 0.1 x lr" in text and "gradient clipping at total norm 1" in text
    assert "EMA of the weights (decay 0.9): the EMA weights are selected, scored and saved" in text


def test_protocol_line_names_the_arms_when_their_options_differ() -> None:
    from harness.report.render import protocol_text

    base = {"cv": {"folds": 2, "repeats": 1}, "training": {}, "init": "standard"}
    same = {**base, "arms": {"a": {"training": {"ema": {"decay": 0.99}}}, "b": {"training": {"ema": {"decay": 0.99}}}}}
    assert protocol_text(same).endswith(", EMA of the weights (decay 0.99): the EMA weights are selected, scored and saved")
    differ = {**base, "arms": {"a": {"training": {"clip_grad": {"max_norm": 2}}}, "b": {"training": {}}}}
    assert protocol_text(differ).endswith(", a: gradient clipping at total norm 2, b: no warmup, clipping or EMA")
    assert "EMA" not in protocol_text({**base, "arms": {"a": {"training": {"ema": None}}}})  # off: not mentioned
