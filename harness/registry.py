"""Plugin discovery and the component registry.

A fresh :class:`pluggy.PluginManager` is made per run. Entry points in the ``harness`` group
(built-ins included) are loaded one at a time, so a broken plugin is a warning naming it
(or an error with ``strict``), not a dead CLI. Modules a study lists under ``plugins:`` are
imported by dotted path; nothing else is ever loaded.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata as metadata
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from harness import hookspecs
from harness.contracts import (
    KIND_NAMES,
    AttentionInfo,
    BackboneInfo,
    DatasetInfo,
    EpochContext,
    FoldContext,
    LoggerInfo,
    OptimizerInfo,
    ReportContext,
    ReportSection,
    SchedulerInfo,
    StudyContext,
    StudyStartContext,
)
from harness.defaults import ComponentDefaults, component_defaults, no_default
from harness.errors import HarnessError, did_you_mean, unknown_name
from harness.optional import install_hint, installed
from harness.options import parse_options
from harness.rundir import PLUGINS

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
    "loggers": ("register_loggers", LoggerInfo),
}


@dataclass
class Registry:
    """All components by kind and name, and which plugin registered each."""

    plugin_manager: pluggy.PluginManager
    plugins: list[PluginRecord]
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: ComponentDefaults = field(default_factory=ComponentDefaults)  # set by build_registry

    def default(self, kind: str) -> str:
        """The name of the component of ``kind`` that its plugin marks the default; a HarnessError if none is."""
        if kind not in self.defaults.names:
            raise HarnessError(no_default(kind))
        return self.defaults.names[kind]

    def identity_attention(self) -> str:
        """The attention variant marked ``identity`` (no attention); a HarnessError if none is."""
        if self.defaults.identity_attention is None:
            raise HarnessError("no attention variant is marked as 'no attention' (identity=True) among the loaded "
                               "plugins: give --attention (`harness list attention` lists them)")
        return self.defaults.identity_attention

    def get(self, kind: str, name: str) -> Any:
        """The component ``name`` of ``kind``, or a HarnessError listing close matches."""
        table = self.components[kind]
        if name in table:
            return table[name]
        family, members = self._family(kind, name)
        if family is None or members is None:
            raise HarnessError(unknown_name(KIND_NAMES[kind], name, table))
        if name not in members(name):  # e.g. timm/<name>: the family lists its own names
            raise HarnessError(f"unknown {KIND_NAMES[kind]} {name!r}{did_you_mean(name, members(family.name))}; "
                               f"`harness list {kind} '{family.name}'` lists them")
        return family

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def matching(self, kind: str, pattern: str) -> list[str]:
        """Registered names matching an fnmatch ``pattern``; a pattern inside a family (``timm/res*``)
        lists the family's members, so ``*`` alone never lists every timm model."""
        import fnmatch

        names = [n for n in self.names(kind) if fnmatch.fnmatch(n, pattern)]
        _, members = self._family(kind, pattern)
        return names + sorted(set(members(pattern)) - set(names)) if members is not None else names

    def _family(self, kind: str, name: str) -> tuple[Any, Callable[[str], list[str]] | None]:
        """The family entry (``timm/*``) a ``prefix/...`` name or pattern belongs to, and its ``members``."""
        family = self.components[kind].get(name.split("/", 1)[0] + "/*") if "/" in name else None
        return family, getattr(family, "members", None)

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

    def logger(self, name: str) -> LoggerInfo:
        return self.get("loggers", name)  # type: ignore[no-any-return]

    # -- typed hook calls: each implementation is called on its own, so an error names its plugin

    def _call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``(plugin name, result)`` of every implementation of ``hook_name``; errors name the plugin."""
        results = []
        for impl in reversed(getattr(self.plugin_manager.hook, hook_name).get_hookimpls()):
            try:
                results.append((impl.plugin_name, impl.function(**kwargs)))
            except HarnessError as exc:
                raise HarnessError(f"plugin {impl.plugin_name!r}, hook {hook_name}: {exc}") from exc
            except Exception as exc:
                raise HarnessError(
                    f"plugin {impl.plugin_name!r} failed in hook {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc
        return results

    def study_started(self, context: StudyStartContext) -> None:
        """Tell every plugin that the study's first cell is about to train."""
        self._call_each("study_started", context=context)

    def epoch_finished(self, context: EpochContext) -> None:
        """Tell every plugin that one epoch of a cell finished."""
        self._call_each("epoch_finished", context=context)

    def fold_finished(self, context: FoldContext) -> None:
        """Tell every plugin that one cell finished."""
        self._call_each("fold_finished", context=context)

    def study_finished(self, context: StudyContext) -> None:
        """Tell every plugin that the study finished."""
        self._call_each("study_finished", context=context)

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        """Every plugin's extra report sections, type-checked."""
        sections: list[ReportSection] = []
        for plugin, returned in self._call_each("report_sections", context=context):
            for section in returned or []:
                if not isinstance(section, ReportSection):
                    raise HarnessError(f"plugin {plugin!r}: report_sections returned {section!r}, "
                                       "expected ReportSection objects")
                sections.append(section)
        return sections

    def report_filters(self, reserved: Iterable[str] = ()) -> dict[str, Callable[..., Any]]:
        """Every plugin's Jinja filters; a plugin may not replace a built-in (``reserved``) filter."""
        merged: dict[str, Callable[..., Any]] = {}
        owners: dict[str, str] = {}
        taken = set(reserved)
        for plugin, returned in self._call_each("report_filters"):
            if returned is None:
                continue
            if not isinstance(returned, Mapping):
                raise HarnessError(f"plugin {plugin!r}: report_filters returned {returned!r}, expected a dict")
            for name, function in returned.items():
                if not callable(function):
                    raise HarnessError(f"plugin {plugin!r}: report filter {name!r} is not callable")
                if name in taken:
                    raise HarnessError(f"plugin {plugin!r}: report filter {name!r} would replace the built-in "
                                       "filter of that name; give it another name")
                if name in owners:
                    raise HarnessError(f"report filter {name!r} is registered by plugin {owners[name]!r} "
                                       f"and by plugin {plugin!r}; rename one of them")
                merged[name], owners[name] = function, plugin
        return merged

    # -- loggers: plugins started for one run only, from the study's ``loggers:``

    def start_loggers(self, loggers: Iterable[tuple[str, Mapping[str, Any]]],
                      folder: Callable[[str], Path]) -> list[object]:
        """Start each ``(name, options)`` logger in its own ``folder(name)`` (created) and register it as a
        plugin; end with :meth:`stop_loggers`."""
        started: list[object] = []
        try:
            for name, options in loggers:
                info = self.logger(name)
                missing = logger_missing(info)
                if missing:
                    raise HarnessError(f"loggers: {missing}")
                if info.options is not None:
                    parse_options(info.options, options, f"loggers: {name}")
                try:
                    own = folder(name)
                    own.mkdir(parents=True, exist_ok=True)
                    plugin = info.start(dict(options), own)
                except HarnessError as exc:
                    raise HarnessError(f"loggers: {name}: {exc}") from exc
                except Exception as exc:
                    raise HarnessError(f"logger {name!r} failed to start: {type(exc).__name__}: {exc}") from exc
                self.plugin_manager.register(plugin, name=f"logger {name}")
                started.append(plugin)
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop_loggers(started, completed=False)
            raise
        return started

    def kept_plugin_files(self) -> list[str]:
        """Paths (relative to a run directory) that ``--fresh`` keeps: each logger's declared ``keep``."""
        return [f"{PLUGINS}/{name}/{kept}" for name in self.names("loggers") for kept in self.logger(name).keep]

    def stop_loggers(self, started: Iterable[object], *, completed: bool) -> None:
        """Close (``close(completed)``) and unregister loggers from :meth:`start_loggers`; every one is
        closed, then the first error is raised, naming its logger."""
        errors: list[str] = []
        for plugin in started:
            name = self.plugin_manager.get_name(plugin) or type(plugin).__name__
            try:
                close = getattr(plugin, "close", None)
                if close is not None:
                    close(completed)
            except Exception as exc:
                errors.append(f"plugin {name!r} failed to close: {type(exc).__name__}: {exc}")
            finally:
                if self.plugin_manager.is_registered(plugin):
                    self.plugin_manager.unregister(plugin)
        if errors:
            raise HarnessError("; ".join(errors))


def logger_missing(info: LoggerInfo) -> str:
    """Why ``info`` cannot start here (its package is not installed, with the fix), or ''."""
    if info.requires is None:
        return ""
    module, extra = info.requires
    if installed(module):
        return ""
    return f"the {info.name} logger needs the {module!r} package, which is not installed: {install_hint(module, extra)}"




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
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise HarnessError(
            f"plugin {pm.get_name(exc.plugin)!r}: {exc}; hook implementations must use a name from "
            "harness/hookspecs.py (`harness plugins` lists them)"
        ) from None
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
            try:
                returned = impl.function() or []
            except Exception as exc:
                raise HarnessError(
                    f"plugin {impl.plugin_name!r} failed in hook {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc
            for info in returned:
                if not isinstance(info, info_type) or not isinstance(getattr(info, "name", None), str):
                    raise HarnessError(
                        f"plugin {impl.plugin_name!r}: {hook_name} returned {info!r}, "
                        f"expected {info_type.__name__} objects"
                    )
                if info.name in table:
                    if table[info.name] == info:
                        continue  # the identical entry twice is a no-op
                    raise HarnessError(
                        f"duplicate {KIND_NAMES[kind]} name {info.name!r}: registered by plugin "
                        f"{owners[info.name]!r} and by plugin {impl.plugin_name!r}; "
                        "uninstall or rename one of them"
                    )
                table[info.name] = info
                owners[info.name] = impl.plugin_name
        registry.components[kind] = table
        registry.owners[kind] = owners
    registry.defaults = component_defaults(registry.components, registry.owners)
    return registry


def study_defaults(plugins: Any) -> ComponentDefaults:
    """The defaults of the registry a study with ``plugins:`` gets (the entry points and those modules), for a
    study loaded without one; entries that are not module names are left to the schema to report, and a
    plugin that fails to load to the registry the command builds (which warns or, strict, refuses)."""
    modules = [p for p in plugins if isinstance(p, str)] if isinstance(plugins, list) else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        return load_registry(modules).defaults


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
