"""Plugin discovery and the component registry.

A fresh :class:`pluggy.PluginManager` is made per run. Entry points in the ``harness`` group
(built-ins included) are loaded one at a time, so a broken plugin is a warning naming it
(or an error with ``strict``), not a dead CLI. Modules a study lists under ``plugins:`` are
imported by dotted path; nothing else is ever loaded.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from harness import hookspecs
from harness.contracts import (
    AttentionInfo,
    BackboneInfo,
    DatasetInfo,
    OptimizerInfo,
    SchedulerInfo,
)
from harness.errors import HarnessError, unknown_name

ENTRY_POINT_GROUP = "harness"


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded; silence with ``-W ignore::harness.registry.PluginLoadWarning``."""


@dataclass(frozen=True)
class PluginRecord:
    """Where a loaded plugin came from."""

    name: str
    version: str
    source: str


KINDS: dict[str, tuple[str, Any]] = {
    "backbones": ("register_backbones", BackboneInfo),
    "attention": ("register_attention_variants", AttentionInfo),
    "datasets": ("register_datasets", DatasetInfo),
    "schedulers": ("register_schedulers", SchedulerInfo),
    "optimizers": ("register_optimizers", OptimizerInfo),
}


@dataclass
class Registry:
    """All components by kind and name, and which plugin registered each."""

    plugin_manager: pluggy.PluginManager
    plugins: list[PluginRecord]
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: dict[str, dict[str, str]] = field(default_factory=dict)

    def get(self, kind: str, name: str) -> Any:
        """The component ``name`` of ``kind``, or a HarnessError listing close matches."""
        table = self.components[kind]
        if name not in table:
            raise HarnessError(unknown_name(_SINGULAR[kind], name, table))
        return table[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def backbone(self, name: str) -> BackboneInfo:
        return self.get("backbones", name)  # type: ignore[no-any-return]

    def attention(self, name: str) -> AttentionInfo:
        return self.get("attention", name)  # type: ignore[no-any-return]

    def dataset(self, name: str) -> DatasetInfo:
        return self.get("datasets", name)  # type: ignore[no-any-return]

    def scheduler(self, name: str) -> SchedulerInfo:
        return self.get("schedulers", name)  # type: ignore[no-any-return]

    def optimizer(self, name: str) -> OptimizerInfo:
        return self.get("optimizers", name)  # type: ignore[no-any-return]

    def hook(self) -> Any:
        return self.plugin_manager.hook


_SINGULAR = {
    "backbones": "backbone",
    "attention": "attention variant",
    "datasets": "dataset",
    "schedulers": "scheduler",
    "optimizers": "optimizer",
}


def make_plugin_manager(
    extra_modules: Iterable[str] = (), *, strict: bool = False, entry_points: bool = True
) -> tuple[pluggy.PluginManager, list[PluginRecord]]:
    """A new plugin manager with entry-point plugins and the given module paths registered."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    records: list[PluginRecord] = []
    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist
            source = f"{dist.name if dist else '?'} (entry point {ep.value})"
            module = _load_guarded(ep.name, ep.load, strict)
            if module is not None and _register(pm, module, ep.name, strict):
                records.append(PluginRecord(ep.name, dist.version if dist else "", source))
    for dotted in extra_modules:
        module = _load_guarded(dotted, lambda d=dotted: importlib.import_module(d), strict)
        if module is not None and _register(pm, module, dotted, strict):
            version = str(getattr(module, "__version__", ""))
            records.append(PluginRecord(dotted, version, "study file"))
    pm.check_pending()
    return pm, records


def _load_guarded(name: str, load: Any, strict: bool) -> ModuleType | None:
    try:
        return load()  # type: ignore[no-any-return]
    except Exception as exc:  # a broken plugin must not take the CLI down
        message = f"plugin {name!r} failed to load: {type(exc).__name__}: {exc}"
        if strict:
            raise HarnessError(message + " (strict plugin mode)") from exc
        warnings.warn(
            message + "; continuing without it (use --strict-plugins to make this an error)",
            PluginLoadWarning,
            stacklevel=2,
        )
        return None


def _register(pm: pluggy.PluginManager, module: ModuleType, name: str, strict: bool) -> bool:
    if pm.is_registered(module):
        return False
    try:
        pm.register(module, name=name)
    except Exception as exc:  # e.g. a hookimpl whose signature does not match its spec
        message = f"plugin {name!r} could not be registered: {exc}"
        if strict:
            raise HarnessError(message) from exc
        warnings.warn(message, PluginLoadWarning, stacklevel=2)
        return False
    return True


def build_registry(pm: pluggy.PluginManager, records: list[PluginRecord]) -> Registry:
    """Call every registration hook, check the types and refuse duplicate names."""
    registry = Registry(pm, records)
    for kind, (hook_name, info_type) in KINDS.items():
        table: dict[str, Any] = {}
        owners: dict[str, str] = {}
        caller = getattr(pm.hook, hook_name)
        for impl in caller.get_hookimpls():
            for info in impl.function() or []:
                if not isinstance(info, info_type) or not isinstance(getattr(info, "name", None), str):
                    raise HarnessError(
                        f"plugin {impl.plugin_name!r}: {hook_name} returned {info!r}, "
                        f"expected {info_type.__name__} objects"
                    )
                if info.name in table:
                    if table[info.name] == info:
                        continue  # the identical entry twice is a no-op
                    raise HarnessError(
                        f"duplicate {_SINGULAR[kind]} name {info.name!r}: registered by plugin "
                        f"{owners[info.name]!r} and by plugin {impl.plugin_name!r}; "
                        "uninstall or rename one of them"
                    )
                table[info.name] = info
                owners[info.name] = impl.plugin_name
        registry.components[kind] = table
        registry.owners[kind] = owners
    return registry


def load_registry(extra_modules: Iterable[str] = (), *, strict: bool = False) -> Registry:
    """Discover plugins and build the registry in one step."""
    pm, records = make_plugin_manager(extra_modules, strict=strict)
    registry = build_registry(pm, records)
    if not any(registry.components.values()):
        raise HarnessError(
            "no plugins found: the built-in plugins register through entry points, so the "
            "package must be installed (pip install -e .)"
        )
    return registry
