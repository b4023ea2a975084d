"""Defaults are registry properties: which component a study gets where it names none.

A plugin marks its component ``default=True`` on its info object (an optimizer, a scheduler, an attention
variant) and the "no attention" variant ``identity=True``; the core never spells a built-in's name. Among
the loaded plugins at most one component of a kind claims each mark (two is an error naming both); a kind
that nobody marks has no default, and a study must then name its component.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.contracts import KIND_NAMES
from harness.errors import HarnessError

MARKS = {"default": ("attention", "optimizers", "schedulers"), "identity": ("attention",)}  # mark -> kinds having it


@dataclass(frozen=True)
class ComponentDefaults:
    """The registry's answer for a study: kind -> its default component's name (absent: none is marked),
    and the attention variant that adds no attention (``None``: none is marked)."""

    names: Mapping[str, str] = field(default_factory=dict)
    identity_attention: str | None = None


def no_default(kind: str, fix: str = "name one") -> str:
    """Why a ``kind`` component must be named: no loaded plugin marks one the default."""
    return (f"no {KIND_NAMES[kind]} is the default (no loaded plugin marks one default=True): {fix}; "
            f"`harness list {kind}` lists them")


def component_defaults(components: Mapping[str, Mapping[str, Any]],
                       owners: Mapping[str, Mapping[str, str]]) -> ComponentDefaults:
    """Each kind's marked components (``components``: kind -> name -> info; ``owners``: the plugin of each);
    a HarnessError naming both plugins when two components of a kind claim the same mark."""
    marked: dict[str, dict[str, str]] = {}
    for mark, kinds in MARKS.items():
        for kind in kinds:
            claims = sorted(name for name, info in components.get(kind, {}).items() if getattr(info, mark, False))
            if len(claims) > 1:
                who = " and ".join(f"{name!r} (plugin {owners[kind][name]!r})" for name in claims)
                raise HarnessError(f"two {KIND_NAMES[kind]}s claim to be the {mark} one ({mark}=True): {who}; "
                                   "remove one of those plugins (uninstall it, or drop it from the study's plugins:)")
            if claims:
                marked.setdefault(mark, {})[kind] = claims[0]
    return ComponentDefaults(marked.get("default", {}), marked.get("identity", {}).get("attention"))
