"""Batched, per-sample augmentation on tensors (on the training device): flips, one affine warp
(rotation, zoom as a random-resized crop, shift) and brightness/contrast. Off in evaluation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.schema import AugmentSpec


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def augment_batch(x: torch.Tensor, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    """Augment a float batch ``(B, C, H, W)`` in [0, 1]; randomness drawn from ``generator`` (CPU)."""
    if not spec.enabled:
        return x
    b = x.shape[0]
    device = x.device
    flip_h = (torch.rand(b, generator=generator) < spec.hflip).to(device)
    flip_v = (torch.rand(b, generator=generator) < spec.vflip).to(device)
    angle = _uniform(b, -spec.rotate, spec.rotate, generator) * (math.pi / 180)
    zoom = 1.0 / _uniform(b, spec.scale[0], spec.scale[1], generator)
    shift = _uniform(2 * b, -spec.translate, spec.translate, generator).view(b, 2) * 2
    gain = _uniform(b, 1 - spec.brightness, 1 + spec.brightness, generator).to(device)
    contrast = _uniform(b, 1 - spec.contrast, 1 + spec.contrast, generator).to(device)
    if spec.hflip > 0:
        x = torch.where(flip_h[:, None, None, None], x.flip(-1), x)
    if spec.vflip > 0:
        x = torch.where(flip_v[:, None, None, None], x.flip(-2), x)
    if spec.rotate > 0 or spec.scale != (1.0, 1.0) or spec.translate > 0:
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta.to(device=device, dtype=x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if spec.brightness > 0 or spec.contrast > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast[:, None, None, None] + mean) * gain[:, None, None, None]
    return x.clamp_(0, 1)
