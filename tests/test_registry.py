"""The plugin contract: every hook call is typed and any plugin error names the plugin and the hook."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import hookimpl
from harness.cli.main import main
from harness.contracts import FoldContext, ReportContext, ReportSection
from harness.errors import HarnessError
from harness.registry import PluginLoadWarning, build_registry, load_registry, make_plugin_manager


def _registry(*plugins: object):  # type: ignore[no-untyped-def]
    pm, records = make_plugin_manager(entry_points=False)
    for index, plugin in enumerate(plugins):
        pm.register(plugin, name=f"p{index}")
    return build_registry(pm, records)


def test_registration_hook_that_raises_names_plugin_and_hook() -> None:
    class Broken:
        @hookimpl
        def register_backbones(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    with pytest.raises(HarnessError, match=r"plugin 'p0' failed in hook register_backbones: RuntimeError: boom"):
        _registry(Broken())


def test_misspelled_hook_is_a_harness_error_naming_the_plugin() -> None:
    import sys
    import types

    module = types.ModuleType("harness_test_misspelled")

    @hookimpl
    def register_backbone():  # type: ignore[no-untyped-def]  # missing "s"
        return []

    module.register_backbone = register_backbone  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        with pytest.raises(HarnessError, match=r"plugin 'harness_test_misspelled'.*register_backbone"):
            make_plugin_manager([module.__name__], entry_points=False)
    finally:
        del sys.modules[module.__name__]


def test_lifecycle_hook_error_names_plugin(tmp_path) -> None:  # type: ignore[no-untyped-def]
    calls = []

    class Logger:
        @hookimpl
        def fold_finished(self, context):  # type: ignore[no-untyped-def]
            calls.append(context.arm)

    class Faulty:
        @hookimpl
        def study_finished(self, context):  # type: ignore[no-untyped-def]
            raise KeyError("results")

    registry = _registry(Logger(), Faulty())
    registry.fold_finished(FoldContext("s", tmp_path, "arm-a", 0, 1, {}))
    assert calls == ["arm-a"]
    with pytest.raises(HarnessError, match=r"plugin 'p1' failed in hook study_finished: KeyError"):
        from harness.contracts import StudyContext

        registry.study_finished(StudyContext("s", tmp_path, None))  # type: ignore[arg-type]


def test_report_sections_are_type_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    class Good:
        @hookimpl
        def report_sections(self, context):  # type: ignore[no-untyped-def]
            return [ReportSection("Notes", "<p>x</p>")]

    class Bad:
        @hookimpl
        def report_sections(self, context):  # type: ignore[no-untyped-def]
            return ["<p>raw html</p>"]

    assert [s.title for s in _registry(Good()).report_sections(ReportContext(tmp_path, None))] == ["Notes"]
    with pytest.raises(HarnessError, match=r"plugin 'p0': report_sections returned '<p>raw html</p>'"):
        _registry(Bad()).report_sections(ReportContext(tmp_path, None))


def test_report_filters_cannot_replace_builtins_or_each_other() -> None:
    class Pct:
        @hookimpl
        def report_filters(self):  # type: ignore[no-untyped-def]
            return {"pct": lambda v: "hacked"}

    class Shout:
        @hookimpl
        def report_filters(self):  # type: ignore[no-untyped-def]
            return {"shout": str.upper}

    with pytest.raises(HarnessError, match=r"plugin 'p0': report filter 'pct' would replace the built-in"):
        _registry(Pct()).report_filters(reserved={"pct", "num"})
    assert list(_registry(Shout()).report_filters(reserved={"pct"})) == ["shout"]
    with pytest.raises(HarnessError, match=r"'shout' is registered by plugin 'p\d' and by plugin 'p\d'"):
        _registry(Shout(), Shout()).report_filters()


class _Gated(__import__("torch").nn.Module):
    """A third-party channel attention with its own class name: a gate after one conv."""

    def __init__(self, channels: int):
        from torch import nn

        super().__init__()
        self.mix = nn.Conv2d(channels, channels, 1)
        self.squash = nn.Sigmoid()

    def forward(self, x):  # type: ignore[no-untyped-def]
        return x * self.squash(self.mix(x.mean((2, 3), keepdim=True)))


def _third_party_attention_registry():  # type: ignore[no-untyped-def]
    from harness.contracts import AttentionInfo, AttentionPlan

    class ThirdParty:
        @hookimpl
        def register_attention_variants(self):  # type: ignore[no-untyped-def]
            plan = AttentionPlan(layer=_Gated, gate="squash", describe=lambda c: f"gated {c}")
            return [AttentionInfo("gated", lambda options: plan, "a third-party gate")]

    pm, records = make_plugin_manager(["harness_plugins.models.plugin", "harness_plugins.attention.plugin"], entry_points=False)
    pm.register(ThirdParty(), name="thirdparty")
    return build_registry(pm, records)


def test_third_party_attention_gets_cost_rows_and_gates() -> None:
    from harness.contracts import attention_modules
    from harness.models.build import build_model, model_cost

    registry = _third_party_attention_registry()
    model = build_model(registry, "resnet20", "gated", {}, num_classes=2, in_chans=1, image_size=16)
    cost = model_cost(model, 1, 16)
    assert len(cost.attention) == 9  # 3 stages x 3 blocks, found without knowing the class
    assert cost.attention[0]["description"] == "gated 16" and cost.attention[0]["params"] == 16 * 16 + 16
    assert all(tag.gate == "squash" for _, _, tag in attention_modules(model))


def test_pretrained_warning_names_new_third_party_attention_tensors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import torch

    from harness.models.build import build_model

    registry = _third_party_attention_registry()
    plain = build_model(registry, "resnet18", "none", {}, num_classes=2, in_chans=3, image_size=32)
    weights = tmp_path / "plain.pt"
    torch.save(plain.state_dict(), weights)
    model = build_model(registry, "resnet18", "gated", {}, num_classes=2, in_chans=3, image_size=32,
                        pretrained=str(weights))
    notes = " ".join(model.harness_notes)
    assert "attention tensors are newly initialised" in notes and ".se.mix." in notes


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
