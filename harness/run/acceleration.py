"""Faster training steps a study opts into: ``training.compile`` and ``training.cuda_graph``.

``compile``: the training forward (and, through AOTAutograd, its backward) runs through
``torch.compile``. Each cell wraps its fresh model with :func:`compiled`; dynamo's cache is keyed by
its guards (the module classes and structure, input shape, dtype, device, training mode), so the
second cell of an architecture reuses the first cell's graphs without compiling again. Evaluation
stays eager.

``cuda_graph``: :class:`GraphedStep` captures the whole optimisation step (forward, loss, backward,
gradient clipping, optimizer step) in one CUDA graph and replays it for every full batch. The first
:data:`WARMUP_STEPS` steps of a trainer run eagerly on a side stream (real steps, none wasted), the
graph is captured on the next one and replayed from then on; a short last batch runs eagerly. The
learning rate is baked into the graph as the float the optimizer holds, so the step is recaptured
(into the same memory pool, without running anything twice) when a scheduler changes it: at most
once per epoch for epoch-stepped schedulers. Optimizers with a ``capturable`` option (Adam, AdamW,
RMSprop) are switched to it, which keeps their step counters on the GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.study.schema import TrainingSpec

COMPILE_BACKEND = "inductor"  # internal knob: CPU tests use "aot_eager" (inductor's C++ builds are slow there)
RECOMPILE_LIMIT = 64  # dynamo's per-function cache (8 by default) must hold every arm x mode x batch shape
WARMUP_STEPS = 3  # eager steps on a side stream before capture (cuDNN, the allocator, lazy optimizer state)

Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # (x, y) -> (loss, logits)


def compiled(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model``'s forward through ``torch.compile``; graphs are shared by every model of its architecture."""
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, RECOMPILE_LIMIT)
    return torch.compile(model, backend=COMPILE_BACKEND)  # type: ignore[return-value]


def refuse_unsupported(training: TrainingSpec, device: torch.device, fp16_scaler: bool = False) -> None:
    """A HarnessError when ``training.cuda_graph`` is asked for where it cannot run."""
    if not training.cuda_graph:
        return
    if device.type != "cuda":
        raise HarnessError(f"training.cuda_graph: true needs a CUDA device, but training.device resolves to "
                           f"{device.type!r}; set training.cuda_graph: false (or run on a GPU)")
    if fp16_scaler:
        raise HarnessError("training.cuda_graph: true cannot capture fp16 loss scaling (this GPU has no bf16; the "
                           "scaler reads the gradients on the host); set training.amp: false or "
                           "training.cuda_graph: false")


def learning_rates(optimizer: torch.optim.Optimizer) -> tuple[float, ...]:
    return tuple(float(group["lr"]) for group in optimizer.param_groups)


class GraphedStep:
    """The training step ``step`` captured in a CUDA graph for batches of ``batch_size``; see the module doc."""

    def __init__(self, step: Step, optimizer: torch.optim.Optimizer, batch_size: int):
        self.step, self.optimizer, self.batch_size = step, optimizer, batch_size
        self.graph: torch.cuda.CUDAGraph | None = None
        self.pool: Any = None  # the graphs' memory pool handle, shared by every recapture
        self.captured_lrs: tuple[float, ...] = ()
        self.eager_steps = 0
        self.captures = 0
        self.static: tuple[torch.Tensor, torch.Tensor] | None = None  # input batch, labels
        self.outputs: tuple[torch.Tensor, torch.Tensor] | None = None  # loss, logits

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(y) != self.batch_size:  # the short last batch of an epoch
            return self.step(x, y)
        if self.eager_steps == 0:
            for group in self.optimizer.param_groups:  # step counters on the device: no host work in the graph
                if "capturable" in group:
                    group["capturable"] = True
        if self.eager_steps < WARMUP_STEPS:
            self.eager_steps += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step(x, y)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.static is None:
            self.static = (x.clone(), y.clone())  # clone keeps the memory format (channels_last)
        self.static[0].copy_(x)
        self.static[1].copy_(y)
        if self.graph is None or learning_rates(self.optimizer) != self.captured_lrs:
            self._capture()
        assert self.graph is not None and self.outputs is not None
        self.graph.replay()
        return self.outputs

    def _capture(self) -> None:
        """Record one step into a new graph (nothing runs until it is replayed)."""
        assert self.static is not None
        graph = torch.cuda.CUDAGraph()  # the old graph lives until this one is captured: the pool stays in use
        with torch.cuda.graph(graph, pool=self.pool):
            self.outputs = self.step(*self.static)
        self.graph, self.pool = graph, graph.pool()
        self.captured_lrs = learning_rates(self.optimizer)
        self.captures += 1
