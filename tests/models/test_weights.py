"""Weights files: read with weights_only; a file that would run code, a damaged one and a wrapped state_dict."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.errors import HarnessError
from harness.models.weights import read_state_dict, safe_torch_load


class _Payload:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("this would run",))


def test_a_wrapped_state_dict_is_unwrapped_and_the_ddp_prefix_dropped(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save({"state_dict": {"module.fc.weight": torch.ones(2, 2), "step": 3}}, path)
    weights = read_state_dict(path)
    assert list(weights) == ["fc.weight"] and torch.equal(weights["fc.weight"], torch.ones(2, 2))


def test_code_in_a_weights_file_is_refused_and_garbage_is_called_corrupt(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"x": _Payload()}, evil)
    with pytest.raises(HarnessError, match="refused to load: the file holds Python objects beyond tensors"):
        safe_torch_load(evil)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a weights file" * 10)
    with pytest.raises(HarnessError, match="not a readable PyTorch weights file"):
        safe_torch_load(garbage)
    with pytest.raises(HarnessError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pt")
