"""Pretrained weights from timm's local cache or a local file; never code execution, never a download."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from harness.errors import HarnessError


def safe_torch_load(path: Path) -> object:
    """``torch.load`` with ``weights_only=True``; a file that tries to run code is refused clearly."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _looks_pickled(path) and "global" not in str(exc).lower():  # random bytes, not a pickle
            raise HarnessError(f"{path}: not a readable PyTorch weights file (corrupt: {_last_line(exc)})") from None
        raise HarnessError(
            f"{path}: refused to load: the file holds Python objects beyond tensors, which could run "
            f"code ({str(exc).splitlines()[0]}); save a plain state_dict instead"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise HarnessError(f"{path}: not a readable PyTorch weights file ({exc})") from None


def _looks_pickled(path: Path) -> bool:
    """A pickle (PROTO opcode, protocol 2-5) or a zip, as torch.save writes: then a refusal is about code."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def _last_line(exc: Exception) -> str:
    """The informative line of torch's long unpickling messages."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip() and "documentation" not in line]
    return lines[-1] if lines else type(exc).__name__


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file (a nested ``state_dict`` is unwrapped)."""
    if not path.is_file():
        raise HarnessError(f"pretrained weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    data = safe_torch_load(path)
    for key in ("state_dict", "model", "model_state"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: expected a state_dict (a mapping of tensors), got {type(data).__name__}")
    return {k.removeprefix("module."): v for k, v in data.items() if isinstance(v, torch.Tensor)}


def load_pretrained(model: nn.Module, name: str, pretrained: bool | str, in_chans: int) -> None:
    """Load weights into ``model`` non-strictly; record missing/unexpected keys on ``model.harness_notes``."""
    if pretrained is True:
        state = _from_timm_cache(name)
    else:
        state = read_state_dict(Path(str(pretrained)).expanduser())
    own = model.state_dict()
    first_conv = next((k for k, v in own.items() if v.ndim == 4), None)
    if first_conv in state and state[first_conv].shape[1] != in_chans:
        from timm.models import adapt_input_conv

        state[first_conv] = adapt_input_conv(in_chans, state[first_conv])
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    for key in mismatched:  # typically the classifier head: a new number of classes
        del state[key]
    result = model.load_state_dict(state, strict=False)
    notes = list(getattr(model, "harness_notes", []))
    new_attention = [k for k in result.missing_keys if ".se." in k or ".attention." in k or "conv1.0." in k]
    if new_attention:
        notes.append(
            f"pretrained backbone but {len(new_attention)} attention tensors are newly initialised "
            "(e.g. " + new_attention[0] + "): the SE arm starts partly untrained, which confounds the ablation"
        )
    other_missing = [k for k in result.missing_keys if k not in new_attention]
    if other_missing or mismatched:
        notes.append(f"weights not loaded (new or reshaped): {', '.join((mismatched + other_missing)[:8])}")
    if result.unexpected_keys:
        notes.append(f"unused keys in the weights file: {', '.join(result.unexpected_keys[:8])}")
    model.harness_notes = notes  # type: ignore[assignment]


def cached_weights_file(name: str) -> Path | None:
    """Where timm's pretrained weights for ``name`` already lie on disk (HF or torch hub cache), if anywhere."""
    import os
    from urllib.parse import urlparse

    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        for filename in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(cfg.hf_hub_id, filename)
            if isinstance(found, str):
                return Path(found)
    if cfg.url:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(str(cfg.url)).path)
        if candidate.is_file():
            return candidate
    return None


def _from_timm_cache(name: str) -> dict[str, torch.Tensor]:
    path = cached_weights_file(name)
    if path is None:
        raise HarnessError(
            f"pretrained weights for {name!r} are not in timm's local cache (this harness never downloads). "
            f"Download them on a connected machine (timm.create_model({name!r}, pretrained=True)) and copy "
            "the Hugging Face cache, or save the state_dict to a file and set 'pretrained: /path/to/weights.pth'"
        )
    return read_state_dict(path)
