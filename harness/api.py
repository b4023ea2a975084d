"""The plugin API: everything a plugin may import from the harness, and nothing else.

Built-in plugins (``harness_plugins``) use only these names, exactly as a third-party package
would. Anything not listed here is internal and may change between releases.

- registration: :data:`hookimpl` and the frozen info objects a registration hook returns;
- contexts: what the lifecycle and report hooks receive;
- options: :func:`parse_options` validates a component's options against its pydantic model;
- errors: :class:`HarnessError` for a user's mistake (one message, exit 2), :func:`did_you_mean`;
- ResNet surgery: :func:`apply_attention` puts an attention plan into timm-style ResNet stages,
  :func:`apply_init` applies the study's init policy, :func:`tag_builtin_se` tags SE modules a
  backbone builds itself, :func:`mark_attention` tags a module the plugin inserts;
- weights: :func:`load_pretrained` (local files or the timm cache only), :func:`safe_torch_load`;
- files: :func:`atomic_write_text` (temp file + rename), :func:`cell_name` (a cell's folder name).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness.atomic import atomic_write_text
from harness.contracts import (
    PLACEMENTS,
    AttentionInfo,
    AttentionPlan,
    AttentionTag,
    BackboneInfo,
    BackboneRequest,
    DatasetInfo,
    DatasetRequest,
    EpochContext,
    FoldContext,
    LoggerInfo,
    OptimizerInfo,
    ReportContext,
    ReportSection,
    SchedulerInfo,
    StudyContext,
    StudyStartContext,
    attention_modules,
    mark_attention,
)
from harness.errors import HarnessError, did_you_mean
from harness.hookspecs import hookimpl
from harness.options import parse_options
from harness.rundir import cell_name

if TYPE_CHECKING:
    from harness.data.images import ImageTable
    from harness.models.surgery import apply_attention, apply_init, tag_builtin_se
    from harness.models.weights import load_pretrained, safe_torch_load

# names that import torch are loaded on first use, so listing plugins never imports torch
_LAZY = {"ImageTable": "harness.data.images", "apply_attention": "harness.models.surgery",
         "apply_init": "harness.models.surgery", "tag_builtin_se": "harness.models.surgery",
         "load_pretrained": "harness.models.weights", "safe_torch_load": "harness.models.weights"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'harness.api' has no attribute {name!r}")

__all__ = [
    "PLACEMENTS",
    "AttentionInfo",
    "AttentionPlan",
    "AttentionTag",
    "BackboneInfo",
    "BackboneRequest",
    "DatasetInfo",
    "DatasetRequest",
    "EpochContext",
    "FoldContext",
    "HarnessError",
    "ImageTable",
    "LoggerInfo",
    "OptimizerInfo",
    "ReportContext",
    "ReportSection",
    "SchedulerInfo",
    "StudyContext",
    "StudyStartContext",
    "apply_attention",
    "apply_init",
    "atomic_write_text",
    "attention_modules",
    "cell_name",
    "did_you_mean",
    "hookimpl",
    "load_pretrained",
    "mark_attention",
    "parse_options",
    "safe_torch_load",
    "tag_builtin_se",
]
