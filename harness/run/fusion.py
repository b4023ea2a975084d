"""Horizontal fusion (HFTA, MLSys 2021): K cells of one arm trained as one model with ``torch.func``.

The K models share an architecture and optimizer settings but keep their own weights, batches,
BatchNorm running statistics and optimizer state. Parameters and buffers are stacked
(``stack_module_state``); forward and loss run under ``vmap(functional_call)`` over K batches of one
shape, with the stacked buffers batched so each slice's running statistics update as the unfused
model's would (``replace_all_batch_norm_modules_`` would drop them and change the science). The
gradients come from autograd on the stacked leaves; the step is the cells' own optimizer class on the
stacked tensors, which is exact for optimizers whose update is elementwise (:data:`SUPPORTED_OPTIMIZERS`).
:meth:`FusedCells.unstack` writes weights, buffers and optimizer state back into the K modules and
optimizers (checkpoints, evaluation). Float order differs from the unfused step (a grouped convolution
instead of K), so results agree to rounding, not bitwise: see ``tests/run/test_fusion.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from harness.errors import HarnessError
from harness.study.schema import ClipGradSpec

# updates that act element by element (no per-tensor norm), so one step on stacked tensors is K steps
SUPPORTED_OPTIMIZERS: tuple[type[torch.optim.Optimizer], ...] = (
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop)


def _names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[list[str]]:
    """Each parameter group of ``optimizer`` as the names of ``model``'s parameters in it."""
    by_id = {id(p): name for name, p in model.named_parameters()}
    try:
        return [[by_id[id(p)] for p in group["params"]] for group in optimizer.param_groups]
    except KeyError:
        raise HarnessError("fusion: an optimizer holds a tensor that is not a parameter of its model") from None


def _hyper(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    return [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    return bool(a == b)


def _check(models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]) -> list[list[str]]:
    """Refuse what fusion cannot reproduce exactly; the parameter groups by name."""
    if len(models) < 1 or len(models) != len(optimizers):
        raise HarnessError(f"fusion needs one optimizer per model (got {len(models)} models, "
                           f"{len(optimizers)} optimizers)")
    first = optimizers[0]
    if type(first) not in SUPPORTED_OPTIMIZERS:
        names = ", ".join(cls.__name__ for cls in SUPPORTED_OPTIMIZERS)
        raise HarnessError(f"fusion supports the optimizers whose update is elementwise ({names}), not "
                           f"{type(first).__name__}: train these cells unfused")
    shapes = {name: (p.shape, p.dtype) for name, p in models[0].named_parameters()}
    buffers = {name: (b.shape, b.dtype) for name, b in models[0].named_buffers()}
    groups = _names(models[0], first)
    for k, (model, optimizer) in enumerate(zip(models, optimizers, strict=True)):
        if ({n: (p.shape, p.dtype) for n, p in model.named_parameters()} != shapes
                or {n: (b.shape, b.dtype) for n, b in model.named_buffers()} != buffers):
            raise HarnessError(f"fusion: model {k} has other parameters or buffers than model 0; only cells "
                               "of one arm (one architecture) can be fused")
        if type(optimizer) is not type(first) or _names(model, optimizer) != groups or not all(
                h.keys() == h0.keys() and all(_same(h[key], h0[key]) for key in h)
                for h, h0 in zip(_hyper(optimizer), _hyper(first), strict=True)):
            raise HarnessError(f"fusion: optimizer {k} differs from optimizer 0 (class, parameter groups or "
                               "settings); only cells of one arm can be fused")
    return groups


def stack_batches(xs: Sequence[torch.Tensor], ys: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The cells' batches as one (K, B, ...) pair; batches of different sizes are refused (the fused step
    has one batch size: folds of different sizes need a mask, which fusion does not have yet)."""
    sizes = [len(y) for y in ys]
    if len(xs) != len(ys) or any(x.shape != xs[0].shape for x in xs) or len(set(sizes)) != 1 or sizes[0] != len(xs[0]):
        raise HarnessError(f"fusion: every cell's batch must have one size and image shape; got batch sizes "
                           f"{sizes} and image shapes {sorted({tuple(x.shape) for x in xs})}: train these cells "
                           "unfused (or give them equal batches)")
    return torch.stack(list(xs)), torch.stack(list(ys))


class FusedCells:
    """K models of one architecture and their K optimizers, trained together one step at a time."""

    def __init__(self, models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer], *,
                 label_smoothing: float = 0.0, amp_dtype: torch.dtype | None = None,
                 clip_grad: ClipGradSpec | None = None):
        self.groups = _check(models, optimizers)
        if amp_dtype == torch.float16:
            raise HarnessError("fusion: float16 needs a gradient scaler, which fusion does not have; use bf16 or fp32")
        self.models, self.cell_optimizers = list(models), list(optimizers)
        self._named = [dict(model.named_parameters()) for model in self.models]
        self.k = len(self.models)
        self.label_smoothing, self.amp_dtype, self.clip_grad = label_smoothing, amp_dtype, clip_grad
        self.params, self.buffers = stack_module_state(self.models)  # type: ignore[arg-type]
        self.base = copy.deepcopy(self.models[0]).to("meta")  # the architecture only: weights come stacked
        self.base.train()
        first = optimizers[0]
        optimizer_class: Any = type(first)  # one of SUPPORTED_OPTIMIZERS, whose first argument is the groups
        self.optimizer: torch.optim.Optimizer = optimizer_class(
            [{**hyper, "params": [self.params[name] for name in names]}
             for hyper, names in zip(_hyper(first), self.groups, strict=True)])  # every setting comes with its group
        self.optimizer.defaults = dict(first.defaults)
        self._stack_state()

    def _cell_state(self, k: int, name: str) -> dict[str, Any]:
        return self.cell_optimizers[k].state.get(self._named[k][name], {})

    def _stack_state(self) -> None:
        """The cells' optimizer state (momentum, moments) stacked like the parameters; scalars must agree."""
        for names in self.groups:
            for name in names:
                states = [self._cell_state(k, name) for k in range(self.k)]
                if not states[0]:
                    if any(states):
                        raise HarnessError("fusion: some cells' optimizers have taken a step and others not")
                    continue
                stacked: dict[str, Any] = {}
                for key, value in states[0].items():
                    values = [s[key] for s in states]
                    if isinstance(value, torch.Tensor) and value.shape == self.params[name].shape[1:] and value.dim():
                        stacked[key] = torch.stack(values)
                    elif all(_same(v, value) for v in values):
                        stacked[key] = value.clone() if isinstance(value, torch.Tensor) else value
                    else:
                        raise HarnessError(f"fusion: the optimizers' {key!r} differs between cells")
                self.optimizer.state[self.params[name]] = stacked

    def _loss(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
              y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = functional_call(self.base, (params, buffers), (x,))
        return F.cross_entropy(logits, y, label_smoothing=self.label_smoothing), logits

    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step of every cell; ``x`` is (K, B, ...) normalised images, ``y`` (K, B).
        Returns each cell's mean loss (K,) and logits (K, B, classes), detached; no host sync."""
        if x.shape[0] != self.k or y.shape != x.shape[:2]:
            raise HarnessError(f"fusion: a step needs {self.k} batches of one size, images (K, B, ...) and labels "
                               f"(K, B); got images {tuple(x.shape)}, labels {tuple(y.shape)}")
        with torch.autocast(x.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=self.amp_dtype is not None):
            try:
                losses, logits = vmap(self._loss, randomness="error")(self.params, self.buffers, x, y)
            except RuntimeError as exc:
                if "randomness" not in str(exc):
                    raise
                raise HarnessError("fusion: the model draws random numbers in its forward pass (dropout, "
                                   "drop-path), which the fused step cannot draw as the unfused cells do; "
                                   "train these cells unfused") from None
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # the cells' losses are independent: each slice gets its own cell's gradient
        self._clip()
        self.optimizer.step()
        return losses.detach(), logits.detach()

    def _clip(self) -> None:
        """``training.clip_grad`` per cell: each slice's total norm, as ``clip_grad_norm_`` takes it per model."""
        if self.clip_grad is None:
            return
        p = self.clip_grad.norm_type
        grads = [param.grad for param in self.params.values() if param.grad is not None]
        norms = torch.stack([g.flatten(1).norm(p, dim=1) for g in grads])  # (tensors, K)
        total = norms.norm(p, dim=0)  # the schema's norm_type is finite
        coef = (self.clip_grad.max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *[1] * (g.dim() - 1)))

    def unstack(self) -> list[nn.Module]:
        """Copy every slice back into its cell's model and optimizer (exact copies); returns the models."""
        with torch.no_grad():
            for k, model in enumerate(self.models):
                for name, param in model.named_parameters():
                    param.copy_(self.params[name][k])
                for name, buffer in model.named_buffers():
                    buffer.copy_(self.buffers[name][k])
        for names in self.groups:
            for name in names:
                fused = self.optimizer.state.get(self.params[name])
                if not fused:
                    continue
                for k in range(self.k):
                    self.cell_optimizers[k].state[self._named[k][name]] = {
                        key: (value[k].clone() if isinstance(value, torch.Tensor) and value.dim()
                              and value.shape == self.params[name].shape else
                              value.clone() if isinstance(value, torch.Tensor) else value)
                        for key, value in fused.items()}
        for optimizer in self.cell_optimizers:  # the learning rate a scheduler set on the fused optimizer
            for group, fused_group in zip(optimizer.param_groups, self.optimizer.param_groups, strict=True):
                group["lr"] = fused_group["lr"]
        return self.models
