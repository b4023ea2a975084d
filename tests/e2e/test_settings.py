"""One tiny study with two training settings end to end: a complete sub-run per setting sharing one image cache,
stats.json, the top-level report with its across-settings sections, and ``harness compare`` (text and --json)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from harness.cli.main import main

pytestmark = pytest.mark.slow


def test_two_settings_run_on_the_same_folds_and_compare_across(tiny_study: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = copy.deepcopy(tiny_study)
    study["dataset"] = {"name": "phantom", "image_size": 16, "options": {"classes": 2, "per_class": 6, "size": 16, "patients": 4}}
    study["training"]["epochs"] = 1
    study["settings_grid"] = {"training.optimizer.lr": [0.1, 0.001]}
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "across 2 settings (lr-0.1, lr-0.001); accuracy, baseline plain:" in printed
    subs = {s: out / "settings" / s for s in ("lr-0.1", "lr-0.001")}
    for setting, sub in subs.items():
        results = pd.read_csv(sub / "results.csv")
        assert sorted(results.arm.unique()) == ["plain", "se"] and len(results) == 4  # 2 arms x 2 folds
        assert (sub / "report.html").exists() and (sub / "stats.json").exists() and not (sub / "cache").exists()
        lr = yaml.safe_load((sub / "study.yaml").read_text())["training"]["optimizer"]["lr"]
        assert lr == float(setting.removeprefix("lr-"))
    assert (subs["lr-0.1"] / "splits.csv").read_bytes() == (subs["lr-0.001"] / "splits.csv").read_bytes()  # same folds
    assert len(list((out / "cache").glob("decoded-*.npy"))) == 1  # one decoded-image cache for both settings
    cell = Path("cells", "plain", "r0-f0", "fingerprint")
    assert (subs["lr-0.1"] / cell).read_text() != (subs["lr-0.001"] / cell).read_text()  # different training

    stats = json.loads((out / "stats.json").read_text())
    analysis = stats["across_settings"]
    assert set(stats["settings"]) == set(subs) and analysis["settings"] == list(subs) and analysis["axis"] == "lr"
    item = analysis["arms"][0]
    for setting, sub in subs.items():
        means = pd.read_csv(sub / "results.csv").groupby("arm")["accuracy"].mean()
        assert analysis["scores"][setting] == pytest.approx(means.to_dict())
        own = json.loads((sub / "stats.json").read_text())["arms"][0]
        per = item["per_setting"][setting]
        assert per["difference"] == pytest.approx(own["difference"])
        assert per["verdict"] == own["verdict"] or "Holm" in per["verdict_note"]  # better/worse needs Holm < alpha
        raw = own["tests"]["corrected_t"].get("pvalue")
        if raw is not None:  # Holm over two settings: never below the raw p
            assert per["holm_p"] >= raw - 1e-12
    inter = item["interaction"]
    assert inter["n"] == 2 and inter["q"] == 1
    assert ("pvalue" in inter) != ("error" in inter)
    robust = item["robustness"]
    assert robust["se"]["worst_setting"] in subs and robust["plain"]["worst_setting"] in subs
    assert item["sentence"] in printed and item["sentence"].startswith("se")

    report = (out / "report.html").read_text()
    for anchor in ('id="settings-answer"', 'id="interaction"', 'id="robustness"', 'href="settings/lr-0.1/report.html"',
                   "sensitivity plot"):
        assert anchor in report
    assert item["sentence"].replace("'", "&#39;") in report
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0 and 'id="interaction"' in (out / "report.html").read_text()  # re-rendered

    assert main(["compare", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "== setting lr-0.1 ==" in printed and "== setting lr-0.001 ==" in printed and item["sentence"] in printed
    assert ("interaction: T2 = " in printed) == ("pvalue" in inter)
    assert main(["compare", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == stats  # compare --json is what stats.json holds
    assert main(["plan", str(out), "--effect", "0.1"]) == 2
    assert "settings/<id>" in capsys.readouterr().err
