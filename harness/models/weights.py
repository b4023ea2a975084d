"""Pretrained weights from timm's local cache or a local file; never code execution, never a download."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from harness.contracts import attention_modules
from harness.errors import HarnessError


def safe_torch_load(path: Path) -> object:
    """``torch.load`` with ``weights_only=True``; a file that tries to run code is refused clearly."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower() and not _pickles_code(path):  # random bytes or a damaged file
            raise HarnessError(f"{path}: not a readable PyTorch weights file (corrupt: {torch_refusal(exc)})") from None
        raise HarnessError(
            f"{path}: refused to load: the file holds Python objects beyond tensors, which could run "
            f"code ({torch_refusal(exc)}); save a plain state_dict instead"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise HarnessError(f"{path}: not a readable PyTorch weights file ({exc})") from None


CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def _pickles_code(path: Path) -> bool:
    """The file is a well-formed plain pickle that imports or calls something (never executed: opcodes only)."""
    import pickletools

    try:
        with open(path, "rb") as handle:
            return any(op.name in CODE_OPCODES for op, _, _ in pickletools.genops(handle))
    except Exception:  # not a pickle at all: garbage or truncated
        return False


def torch_refusal(exc: BaseException) -> str:
    """What torch's weights-only loader refused, without its advice to retry with ``weights_only=False`` or to
    allowlist globals (both run the file's code: never for a file the harness did not write)."""
    text = str(exc)
    detail = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else text
    lines = [line.strip() for line in detail.splitlines()
             if line.strip() and not any(w in line for w in ("weights_only", "documentation", "allowlist", "file an issue"))]
    return lines[0].split(". ")[0].rstrip(".") if lines else "refused by torch's weights-only loader"


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
    prefixes = tuple(f"{name}." for name, _, _ in attention_modules(model))
    new_attention = [k for k in result.missing_keys if prefixes and k.startswith(prefixes)]
    if new_attention:
        notes.append(
            f"pretrained backbone but {len(new_attention)} attention tensors are newly initialised "
            "(e.g. " + new_attention[0] + "): the attention arm starts partly untrained, which confounds the ablation"
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
