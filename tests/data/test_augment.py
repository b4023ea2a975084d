"""Augmentation: flips exactly when asked, seeded, and the identity when disabled."""

from __future__ import annotations

import torch

from harness.data.augment import augment_batch
from harness.study.schema import AugmentSpec


def _only(**knobs: object) -> AugmentSpec:
    off = {"enabled": True, "hflip": 0.0, "vflip": 0.0, "rotate": 0.0, "scale": (1.0, 1.0), "translate": 0.0,
           "brightness": 0.0, "contrast": 0.0}
    return AugmentSpec(**{**off, **knobs})  # type: ignore[arg-type]


def test_augment_flips_exactly_when_asked_and_is_seeded() -> None:
    x = torch.rand(6, 1, 8, 8)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(augment_batch(x.clone(), _only(), generator), x), "all knobs off: identity"
    assert torch.equal(augment_batch(x.clone(), _only(hflip=1.0), generator), x.flip(-1))
    assert torch.equal(augment_batch(x.clone(), _only(vflip=1.0), generator), x.flip(-2))
    spec = _only(hflip=0.5, rotate=20.0, brightness=0.2)
    a = augment_batch(x.clone(), spec, torch.Generator().manual_seed(7))
    b = augment_batch(x.clone(), spec, torch.Generator().manual_seed(7))
    c = augment_batch(x.clone(), spec, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1


def test_disabled_augmentation_is_the_identity() -> None:
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(augment_batch(x.clone(), _only(enabled=False, hflip=1.0), torch.Generator()), x)
