from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import HarnessError
from harness.registry import PluginLoadWarning, load_registry


def test_builtins_register_through_entry_points() -> None:
    registry = load_registry()
    sources = {p.name: p.source for p in registry.plugins}
    assert {"models", "attention", "datasets", "optim"} <= set(sources)
    assert all("entry point" in s for s in sources.values())
    assert {"resnet18", "resnet20", "se_resnet20", "seresnext50_32x4d"} <= set(registry.names("backbones"))
    assert registry.owners["attention"]["se"] == "attention"


def test_third_party_backbone_used_by_a_study(monkeypatch: pytest.MonkeyPatch, write_study, tmp_path: Path, fixtures: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(fixtures / "thirdparty_site"))
    registry = load_registry()
    assert registry.owners["backbones"]["tinynet"] == "tinynet"
    assert any(p.name == "tinynet" and p.version == "0.3.0" for p in registry.plugins)
    study = write_study({"training": {"epochs": 1}}, arms={"plain": {"backbone": "tinynet"}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    results = (out / "results.csv").read_text()
    assert results.count("plain,") == 2  # two folds of the third-party backbone


def test_broken_plugin_is_a_warning_or_strict_error(monkeypatch: pytest.MonkeyPatch, fixtures: Path) -> None:
    monkeypatch.syspath_prepend(str(fixtures / "broken_site"))
    with pytest.warns(PluginLoadWarning, match="plugin 'broken' failed to load: ModuleNotFoundError"):
        registry = load_registry()
    assert "resnet18" in registry.names("backbones")  # the rest keep working
    with pytest.raises(HarnessError, match="plugin 'broken' failed to load.*strict"):
        load_registry(strict=True)


def test_duplicate_names_name_both_plugins(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fixtures: Path) -> None:
    monkeypatch.syspath_prepend(str(fixtures / "duplicate_site"))
    with pytest.raises(HarnessError, match=r"duplicate backbone name 'resnet18': registered by plugin '(dupe|models)' and by plugin '(?!\1)(dupe|models)'"):
        load_registry()
    assert main(["plugins"]) == 2
    assert "duplicate backbone name" in capsys.readouterr().err


def test_study_listed_plugin_module(monkeypatch: pytest.MonkeyPatch, fixtures: Path) -> None:
    monkeypatch.syspath_prepend(str(fixtures / "thirdparty_site"))
    registry = load_registry(["harness_tinynet"])
    # loaded once, through the entry point; listing it again is a no-op
    assert [p.name for p in registry.plugins].count("tinynet") == 1


def test_plugins_and_list_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "models 0.1.0" in out and "backbones:" in out
    assert main(["list", "attention"]) == 0
    out = capsys.readouterr().out
    for name in ("none", "se", "eca", "cbam", "ese", "gc"):
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert main(["list", "backbones", "se_resnet*"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("se_resnet110")


def test_listing_plugins_does_not_import_torch() -> None:
    """`harness --help`, `plugins` and `list` stay fast: torch, timm and optuna load only when needed."""
    import subprocess
    import sys

    code = ("import sys; from harness.cli.main import main; main(['plugins']); main(['list', 'attention']); "
            "heavy = [m for m in ('torch', 'timm', 'optuna', 'pandas') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
