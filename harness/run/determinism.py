"""Same numbers every time on a GPU: ``training.deterministic``, and what a cell was computed with.

On (the default), a CUDA cell runs with deterministic algorithms, cuDNN's autotuner off and its
deterministic kernels on; cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` set before CUDA starts, which
:func:`prepare_environment` does in the CLI's process and in every worker it spawns. Off, cuDNN
picks the fastest kernel per shape (``cudnn.benchmark``): faster, but two identical runs differ.
On CPU nothing changes: torch's CPU kernels already give the same numbers at a fixed thread count.

:func:`compute_of` names a cell's device type and precision (``cpu/fp32``, ``cuda/bf16``), which
the cell fingerprint includes, so cells computed differently never mix in one results table.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING

from harness.errors import HarnessError

if TYPE_CHECKING:  # torch is imported where used: the CLI calls prepare_environment before anything heavy
    import torch

    from harness.study.loader import Arm

CUBLAS_ENV = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_VALUE = ":4096:8"  # cuBLAS's documented setting for reproducible results (a few MiB of workspace)
VARIES = "GPU numbers vary between identical runs (training.deterministic: false)"


def prepare_environment(env: MutableMapping[str, str] | None = None) -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` unless the user did; call before CUDA is initialised."""
    (os.environ if env is None else env).setdefault(CUBLAS_ENV, CUBLAS_VALUE)


def configure(deterministic: bool, device: torch.device) -> None:
    """Set torch for one cell: deterministic kernels, or cuDNN's autotuner. CPU is left as it is."""
    if device.type != "cuda":
        return
    import torch

    if deterministic and not torch.cuda.is_initialized():
        prepare_environment()  # the Python API, outside the CLI: still before CUDA starts
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic)


@contextlib.contextmanager
def explained(arm: str) -> Iterator[None]:
    """An operation with no deterministic CUDA kernel becomes a message that says what to do."""
    try:
        yield
    except RuntimeError as exc:
        if "deterministic" not in str(exc):
            raise
        raise HarnessError(f"arms.{arm}: {str(exc).splitlines()[0]} -- this model uses an operation without a "
                           f"deterministic GPU kernel; set arms.{arm}.training.deterministic: false (its GPU "
                           "numbers then vary between identical runs) or replace the operation") from None


def resolve_device(name: str) -> torch.device:
    """``training.device`` as a torch device; ``auto`` is CUDA when there is a GPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError(f"training.device is {name!r} but no CUDA GPU is available; use auto or cpu")
    return torch.device(name)


def amp_dtype(device: torch.device, amp: bool | None) -> torch.dtype | None:
    """The autocast dtype a cell trains with: bf16 (fp16 where bf16 is missing) on CUDA unless
    ``training.amp: false``; None (fp32) elsewhere."""
    if device.type != "cuda" or amp is False:
        return None
    import torch

    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def compute_of(device: torch.device, amp: bool | None) -> str:
    """``device-type/precision`` of a cell, e.g. ``cpu/fp32`` or ``cuda/bf16``."""
    dtype = amp_dtype(device, amp)
    names = {"torch.bfloat16": "bf16", "torch.float16": "fp16"}
    return f"{device.type}/{'fp32' if dtype is None else names[str(dtype)]}"


def record(arm: Arm) -> dict[str, object]:
    """run.json's line for one arm: its compute (device/precision) and whether it ran deterministically."""
    return {"compute": compute_of(resolve_device(arm.training.device), arm.training.amp),
            "deterministic": arm.training.deterministic}


def describe(run_info: dict[str, object]) -> str:
    """The report's words on GPU reproducibility ('' for a CPU run), from run.json."""
    arms = run_info.get("compute")
    if not isinstance(arms, dict):  # an older run: on a GPU it ran with cuDNN's autotuner
        return ("GPU numbers may vary between identical runs (older run: cuDNN autotuner on)"
                if str(run_info.get("device", "")).startswith("cuda") else "")
    gpu = {name: info for name, info in arms.items() if str(info.get("compute", "")).startswith("cuda")}
    if not gpu:
        return ""
    varying = [name for name, info in gpu.items() if not info.get("deterministic", True)]
    computes = ", ".join(sorted({str(info["compute"]) for info in gpu.values()}))
    if not varying:
        return f"{computes}, deterministic kernels (identical runs give identical numbers)"
    which = "" if len(varying) == len(gpu) else f" for {', '.join(varying)}"
    return f"{computes}; {VARIES}{which}"


def worker_env(index: int, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of local worker ``index`` (0 is the process that starts the others): cuBLAS set for
    deterministic kernels and, on a machine with several GPUs, a GPU of its own, round robin over the
    visible ones (``CUDA_VISIBLE_DEVICES``; worker 0 keeps the first, torch's default device)."""
    import torch

    out = dict(os.environ if env is None else env)
    prepare_environment(out)
    count = torch.cuda.device_count()
    if count > 1:
        visible = [d.strip() for d in out.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        visible = visible[:count] if len(visible) >= count else [str(i) for i in range(count)]
        out["CUDA_VISIBLE_DEVICES"] = visible[index % count]
    return out
