"""Batched, per-sample augmentation on tensors (on the training device): flips, one affine warp
(rotation, zoom as a random-resized crop, shift) and brightness/contrast. Off in evaluation, and
off in training unless the study declares it (``dataset.augment``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from harness.study.schema import AugmentSpec


def to_float(x: torch.Tensor, in_chans: int) -> torch.Tensor:
    """uint8 -> float in [0, 1] with ``in_chans`` channels (gray repeated, or RGB to luminance)."""
    out = x.float().div_(255)
    if out.shape[1] == 1 and in_chans == 3:
        return out.expand(-1, 3, -1, -1)
    if out.shape[1] == 3 and in_chans == 1:  # scalars, not a weight tensor: no host-to-device copy per batch
        return (out[:, :1] * 0.299).add_(out[:, 1:2], alpha=0.587).add_(out[:, 2:3], alpha=0.114)
    return out


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def augment_batch(x: torch.Tensor, spec: AugmentSpec, generator: torch.Generator) -> torch.Tensor:
    """Augment a float batch ``(B, C, H, W)`` in [0, 1]; randomness drawn from ``generator`` (CPU)."""
    if not spec.active:  # nothing declared: the batch is used as is
        return x
    b = x.shape[0]
    flip_h = torch.rand(b, generator=generator) < spec.hflip
    flip_v = torch.rand(b, generator=generator) < spec.vflip
    angle = _uniform(b, -spec.rotate, spec.rotate, generator) * (math.pi / 180)
    zoom = 1.0 / _uniform(b, spec.scale[0], spec.scale[1], generator)
    shift = _uniform(2 * b, -spec.translate, spec.translate, generator).view(b, 2) * 2
    gain = _uniform(b, 1 - spec.brightness, 1 + spec.brightness, generator)
    contrast = _uniform(b, 1 - spec.contrast, 1 + spec.contrast, generator)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    # every parameter crosses to the device in one copy that does not wait for the GPU (a blocking
    # copy would synchronise the stream at every step)
    params = torch.cat([flip_h.float()[:, None], flip_v.float()[:, None], gain[:, None], contrast[:, None],
                        theta.view(b, 6)], 1).to(x.device, non_blocking=True)
    flip_h, flip_v, gain, contrast = params[:, 0] > 0.5, params[:, 1] > 0.5, params[:, 2], params[:, 3]
    if spec.hflip > 0:
        x = torch.where(flip_h[:, None, None, None], x.flip(-1), x)
    if spec.vflip > 0:
        x = torch.where(flip_v[:, None, None, None], x.flip(-2), x)
    if spec.rotate > 0 or spec.scale != (1.0, 1.0) or spec.translate > 0:
        grid = F.affine_grid(params[:, 4:].reshape(b, 2, 3).to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if spec.brightness > 0 or spec.contrast > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * contrast[:, None, None, None] + mean) * gain[:, None, None, None]
    return x.clamp_(0, 1)
