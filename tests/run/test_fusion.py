"""Horizontal fusion (harness/run/fusion.py): K cells of one arm trained as one match K unfused cells.

"Relative difference" of two tensors is max|fused - unfused| / max|unfused|; the largest over every gradient,
parameter, BatchNorm statistic (or optimizer state) of every cell is asserted. Measured on the 2-core CPU machine
(2026-12-04, torch 2.14.1, one thread):

- float64 (the method's exactness): one step, at most 8e-15; five steps, at most 9e-15.
- float32, one step: at most 3.7e-6 on batches where no ReLU input lies within rounding of zero (seed 3 below).
  On other batches (seeds 0, 1, 2, 5 of this data for ResNet-20, seed 5 for SE-ResNet-20) one such input falls
  on the other side of the ReLU in the fused path and the gradients of the layers below it differ by up to
  5e-2; nudging the inputs one ulp in the unfused path does the same. Five float32 steps then drift apart as
  any two runs whose floats differ do (max relative 1.3e-3 for SE-ResNet-20 on seed 3 and 0.2-0.4 for
  ResNet-20; the unfused path with inputs one ulp up drifts by the same amounts): fused cells are other
  numbers, not other science, and must be fingerprinted.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.errors import HarnessError
from harness.models.build import build_model
from harness.run.fusion import FusedCells, stack_batches
from harness.study.schema import ClipGradSpec

K, BATCH, SIZE, CLASSES = 3, 8, 32, 4
ARMS = {"resnet20": ("none", {}), "se_resnet20": ("se", {"reduction": 4})}
SGD = {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}  # the harness's default kind: SGD, momentum, decay


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """One CPU thread, whatever an earlier test in this process set: the float32 tolerances were measured with
    one, and a CPU's float order (so the fused/unfused drift) changes with the thread count (2 threads: 2.5e-2)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _models(registry: Any, arm: str, dtype: torch.dtype = torch.float64) -> list[nn.Module]:
    attention, options = ARMS[arm]
    models = []
    for seed in range(K):  # each cell its own initial weights
        torch.manual_seed(seed)
        models.append(build_model(registry, "resnet20", attention, dict(options), num_classes=CLASSES, in_chans=3,
                                  image_size=SIZE).train().to(dtype))
    return models


def _batches(steps: int, dtype: torch.dtype = torch.float64,
             seed: int = 7) -> list[tuple[list[torch.Tensor], list[torch.Tensor]]]:
    """Per step, each cell's own batch: its own indices into its own fold's images."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (K, 40, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, CLASSES, (K, 40), generator=generator)
    out = []
    for _ in range(steps):
        idx = [torch.randperm(40, generator=generator)[:BATCH] for _ in range(K)]
        xs = [((images[k][idx[k]].float() / 255 - 0.5) / 0.25).to(dtype) for k in range(K)]
        out.append((xs, [labels[k][idx[k]] for k in range(K)]))
    return out


def _unfused_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """FoldTrainer.train_step without amp, clipping or EMA."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _relative(fused: torch.Tensor, unfused: torch.Tensor) -> float:
    fused, unfused = fused.double(), unfused.double()
    scale = unfused.abs().max()
    return float((fused - unfused).abs().max() / scale) if scale > 0 else float((fused - unfused).abs().max())


def _max_difference(fused: FusedCells, models: list[nn.Module], what: str) -> float:
    worst = 0.0
    for k, model in enumerate(models):
        for name, param in model.named_parameters():
            fused_tensor = fused.params[name].grad[k] if what == "grad" else fused.params[name][k]  # type: ignore[index]
            worst = max(worst, _relative(fused_tensor.detach(), param.grad if what == "grad" else param.detach()))
        if what == "state":
            for name, buffer in model.named_buffers():
                if buffer.is_floating_point():
                    worst = max(worst, _relative(fused.buffers[name][k], buffer))
                else:  # num_batches_tracked: counted exactly
                    assert torch.equal(fused.buffers[name][k], buffer), name
    return worst


def _one_step(registry: Any, arm: str, dtype: torch.dtype, seed: int,
              device: str = "cpu") -> tuple[float, float]:
    """One fused step of K cells and K unfused steps from the same weights: the largest gradient and
    parameter/BatchNorm-statistic differences."""
    models = [m.to(device) for m in _models(registry, arm, dtype)]
    reference = copy.deepcopy(models)
    fused = FusedCells(models, [torch.optim.SGD(m.parameters(), **SGD) for m in models])
    (xs, ys), = _batches(1, dtype, seed)
    xs, ys = [x.to(device) for x in xs], [y.to(device) for y in ys]
    fused.step(*stack_batches(xs, ys))
    for model, x, y in zip(reference, xs, ys, strict=True):
        _unfused_step(model, torch.optim.SGD(model.parameters(), **SGD), x, y)
    fresh = [m.layer1[0].bn1.running_mean.to(device) for m in _models(registry, arm, dtype)]  # the statistics did move
    assert not any(torch.equal(b, f) for b, f in zip(fresh, fused.buffers["layer1.0.bn1.running_mean"], strict=True))
    return _max_difference(fused, reference, "grad"), _max_difference(fused, reference, "state")


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("arm", list(ARMS))
def test_one_fused_step_computes_what_three_unfused_steps_do(builtin_registry: Any, arm: str, device: str) -> None:
    """float64: the method itself (stacking, vmap, BatchNorm statistics, the optimizer step) is exact."""
    grad, state = _one_step(builtin_registry, arm, torch.float64, seed=7, device=device)
    assert grad < 1e-10 and state < 1e-10, (grad, state)


@pytest.mark.parametrize("arm", list(ARMS))
def test_one_fused_float32_step_is_within_the_issues_rule(builtin_registry: Any, arm: str) -> None:
    """float32 (the harness's CPU precision): gradients within 1e-5 relative, parameters and statistics too."""
    grad, state = _one_step(builtin_registry, arm, torch.float32, seed=3)
    assert grad < 1e-5 and state < 1e-5, (grad, state)


def test_five_steps_with_optimizer_state_carried_in_and_out(builtin_registry: Any) -> None:
    """float64. Step 1 unfused, steps 2-5 fused (the momentum stacked in), unstacked back: as 5 unfused steps."""
    models = _models(builtin_registry, "se_resnet20")
    reference = copy.deepcopy(models)
    optimizers = [torch.optim.SGD(m.parameters(), **SGD, nesterov=True) for m in models]
    ref_optimizers = [torch.optim.SGD(m.parameters(), **SGD, nesterov=True) for m in reference]
    batches = _batches(5)
    for k in range(K):
        _unfused_step(models[k], optimizers[k], batches[0][0][k], batches[0][1][k])
    fused = FusedCells(models, optimizers)
    for xs, ys in batches[1:]:
        fused.step(*stack_batches(xs, ys))
    for xs, ys in batches:
        for k in range(K):
            _unfused_step(reference[k], ref_optimizers[k], xs[k], ys[k])
    drift = _max_difference(fused, reference, "state")
    assert drift < 1e-10, drift
    unstacked = fused.unstack()
    for k, model in enumerate(unstacked):  # unstacking copies exactly
        for name, tensor in model.state_dict().items():
            source = fused.params[name][k] if name in fused.params else fused.buffers[name][k]
            assert torch.equal(tensor, source.detach()), name
        for param, ref_param in zip(model.parameters(), reference[k].parameters(), strict=True):
            momentum = optimizers[k].state[param]["momentum_buffer"]
            assert _relative(momentum, ref_optimizers[k].state[ref_param]["momentum_buffer"]) < 1e-10
    x = batches[0][0][0]
    with torch.no_grad():  # the unstacked models evaluate as the unfused ones
        assert _relative(unstacked[0].eval()(x), reference[0].eval()(x)) < 1e-10


def test_five_float32_steps_stay_close(builtin_registry: Any) -> None:
    """float32 over five SGD steps: the drift of two float orders (measured 1.3e-3, the same as nudging the
    unfused inputs one ulp), far below what a wrong statistic or momentum would give."""
    models = _models(builtin_registry, "se_resnet20", torch.float32)
    reference = copy.deepcopy(models)
    fused = FusedCells(models, [torch.optim.SGD(m.parameters(), **SGD) for m in models])
    ref_optimizers = [torch.optim.SGD(m.parameters(), **SGD) for m in reference]
    for xs, ys in _batches(5, torch.float32, seed=3):
        fused.step(*stack_batches(xs, ys))
        for k in range(K):
            _unfused_step(reference[k], ref_optimizers[k], xs[k], ys[k])
    drift = _max_difference(fused, reference, "state")
    assert drift < 1e-2, drift


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_gradient_clipping_is_per_cell(builtin_registry: Any, norm_type: float) -> None:
    """float64: training.clip_grad clips each cell's own total norm, as clip_grad_norm_ does per model."""
    spec = ClipGradSpec(max_norm=0.05, norm_type=norm_type)  # small enough to clip every cell
    models = _models(builtin_registry, "resnet20")
    reference = copy.deepcopy(models)
    fused = FusedCells(models, [torch.optim.SGD(m.parameters(), **SGD) for m in models], clip_grad=spec)
    (xs, ys), = _batches(1)
    fused.step(*stack_batches(xs, ys))
    for model, x, y in zip(reference, xs, ys, strict=True):
        optimizer = torch.optim.SGD(model.parameters(), **SGD)
        F.cross_entropy(model(x), y).backward()
        assert float(nn.utils.clip_grad_norm_(model.parameters(), spec.max_norm, norm_type=norm_type)) > 0.05
        optimizer.step()
    assert _max_difference(fused, reference, "grad") < 1e-10 and _max_difference(fused, reference, "state") < 1e-10


def test_fused_path_is_bitwise_deterministic(builtin_registry: Any) -> None:
    runs = []
    for _ in range(2):
        models = _models(builtin_registry, "se_resnet20", torch.float32)
        fused = FusedCells(models, [torch.optim.SGD(m.parameters(), **SGD) for m in models])
        for xs, ys in _batches(2, torch.float32):
            fused.step(*stack_batches(xs, ys))
        runs.append({**{n: p.detach().clone() for n, p in fused.params.items()}, **fused.buffers})
    assert all(torch.equal(runs[0][name], runs[1][name]) for name in runs[0])


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop])
def test_other_elementwise_optimizers_match(builtin_registry: Any, optimizer: type[torch.optim.Optimizer]) -> None:
    models = _models(builtin_registry, "resnet20")
    reference = copy.deepcopy(models)
    fused = FusedCells(models, [optimizer(m.parameters(), lr=1e-3) for m in models])
    batches = _batches(2)
    for xs, ys in batches:
        fused.step(*stack_batches(xs, ys))
    ref_optimizers = [optimizer(m.parameters(), lr=1e-3) for m in reference]
    for xs, ys in batches:
        for k in range(K):
            _unfused_step(reference[k], ref_optimizers[k], xs[k], ys[k])
    assert _max_difference(fused, reference, "state") < 1e-10


def test_what_fusion_cannot_reproduce_is_refused(builtin_registry: Any) -> None:
    models = _models(builtin_registry, "resnet20")
    sgd = [torch.optim.SGD(m.parameters(), **SGD) for m in models]
    (xs, ys), = _batches(1)
    with pytest.raises(HarnessError, match=r"one size.*batch sizes \[8, 8, 7\]"):
        stack_batches(xs[:2] + [xs[2][:7]], ys[:2] + [ys[2][:7]])
    fused = FusedCells(models, sgd)
    with pytest.raises(HarnessError, match="3 batches of one size"):
        fused.step(torch.stack(xs[:2]), torch.stack(ys[:2]))
    with pytest.raises(HarnessError, match=r"elementwise \(SGD, Adam, AdamW, RMSprop\), not Adagrad"):
        FusedCells(models, [torch.optim.Adagrad(m.parameters()) for m in models])
    with pytest.raises(HarnessError, match="optimizer 2 differs"):
        FusedCells(models, sgd[:2] + [torch.optim.SGD(models[2].parameters(), lr=0.1)])
    with pytest.raises(HarnessError, match="model 1 has other parameters"):
        other = _models(builtin_registry, "se_resnet20")[1]
        FusedCells([models[0], other], [sgd[0], torch.optim.SGD(other.parameters(), **SGD)])
    with pytest.raises(HarnessError, match="float16"):
        FusedCells(models, sgd, amp_dtype=torch.float16)
    dropout = [nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * SIZE * SIZE, CLASSES)) for _ in range(K)]
    with pytest.raises(HarnessError, match="random numbers"):
        FusedCells(dropout, [torch.optim.SGD(m.parameters(), lr=0.1) for m in dropout]).step(*stack_batches(xs, ys))
