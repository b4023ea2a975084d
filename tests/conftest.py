"""Shared fixtures: tiny real studies (ResNet-20 at 32 px, a few phantom images, 1-2 epochs)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml

from harness.study.loader import _deep_merge as deep_update

FIXTURES = Path(__file__).parent / "fixtures"
with open(FIXTURES.parents[1] / "pyproject.toml", "rb") as _pyproject:  # the built-in plugins: our entry points
    BUILTIN_PLUGINS = tuple(tomllib.load(_pyproject)["project"]["entry-points"]["harness"].values())

TINY_STUDY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "dataset": {"name": "phantom", "image_size": 32, "options": {"classes": 2, "per_class": 12, "size": 32, "patients": 6}},
    "cv": {"folds": 2, "repeats": 1},
    "training": {
        "epochs": 2,
        "batch_size": 8,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "scheduler": {"name": "step", "step_size": 1, "gamma": 0.5},
        "threads": 1,
    },
    "arms": {
        "plain": {"backbone": "resnet20", "attention": "none"},
        "se": {"backbone": "resnet20", "attention": {"name": "se", "reduction": 4}},
    },
    "compare": {"baseline": "plain"},
}


@pytest.fixture(scope="session")
def tiny_study_factory():  # type: ignore[no-untyped-def]
    """Fresh copies of TINY_STUDY for module- and session-scoped fixtures (no module imports conftest by path)."""
    return lambda: copy.deepcopy(TINY_STUDY)


@pytest.fixture
def tiny_study() -> dict[str, Any]:
    """A fresh copy of TINY_STUDY to change (a fixture, so no test module imports conftest by path)."""
    return copy.deepcopy(TINY_STUDY)


@pytest.fixture
def write_study(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a tiny study (optionally changed) to tmp_path and return its path."""

    def write(update: dict[str, Any] | None = None, name: str = "study.yaml",
              arms: dict[str, Any] | None = None) -> Path:
        study = deep_update(TINY_STUDY, update or {})
        if arms is not None:
            study["arms"] = arms
            study["compare"]["baseline"] = next(iter(arms))
        path = tmp_path / name
        path.write_text(yaml.safe_dump(study, sort_keys=False))
        return path

    return write


@pytest.fixture
def builtin_plugins() -> tuple[Any, list[Any]]:
    """A new plugin manager (and its records) with the built-in plugins only, never whatever else is installed."""
    from harness.registry import make_plugin_manager

    return make_plugin_manager(BUILTIN_PLUGINS, strict=True, entry_points=False)


@pytest.fixture(scope="session")
def builtin_registry() -> Any:
    """The registry of the built-in plugins only, on a plugin manager of its own (shared: registries are read-only)."""
    from harness.registry import build_registry, make_plugin_manager

    return build_registry(*make_plugin_manager(BUILTIN_PLUGINS, strict=True, entry_points=False))


@pytest.fixture(scope="session")
def docs_generator():  # type: ignore[no-untyped-def]
    """docs/gen_reference.py, the generator of the docs' reference pages (a script, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_reference", FIXTURES.parents[1] / "docs" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fixtures() -> Path:
    """Folder of real fixture files (plugin packages with their dist-info)."""
    return FIXTURES


@pytest.fixture
def multi_study(tmp_path: Path, tiny_study: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Write the tiny study with ``datasets: entries`` (and top-level keys) instead of one dataset."""

    def write(entries: list[dict[str, Any]], **top: Any) -> Path:
        study = copy.deepcopy(tiny_study)
        del study["dataset"]
        study["datasets"] = entries
        study.update(top)
        path = tmp_path / "multi.yaml"
        path.write_text(yaml.safe_dump(study, sort_keys=False))
        return path

    return write
