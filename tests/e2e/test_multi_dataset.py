"""One tiny multi-dataset study end to end: a complete sub-run per dataset, across.json, the top-level report
with its across-dataset section, and ``harness compare`` printing the across-dataset verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from harness.cli.main import main

pytestmark = pytest.mark.slow


def test_two_phantom_variants_run_and_compare_across(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     tiny_study: dict[str, Any]) -> None:
    study = tiny_study
    del study["dataset"]
    variant: dict[str, Any] = {"name": "phantom", "image_size": 16, "options": {"classes": 2, "per_class": 6, "size": 16, "patients": 4}}
    study["datasets"] = [{**variant, "id": "easy", "options": {**variant["options"], "difficulty": 0.1}},
                         {**variant, "id": "hard", "options": {**variant["options"], "difficulty": 0.9, "seed": 7}}]
    study["training"]["epochs"] = 1
    path = tmp_path / "across.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "across 2 datasets (easy, hard)" in printed and "se better on" in printed
    for dataset_id in ("easy", "hard"):
        sub = out / "datasets" / dataset_id
        results = pd.read_csv(sub / "results.csv")
        assert sorted(results.arm.unique()) == ["plain", "se"] and len(results) == 4  # 2 arms x 2 folds
        assert (sub / "report.html").exists() and (sub / "stats.json").exists()
    easy, hard = (out / "datasets" / d for d in ("easy", "hard"))
    assert (easy / "splits.csv").read_bytes() == (hard / "splits.csv").read_bytes()  # the same seeds per dataset
    cell = Path("cells", "plain", "r0-f0", "fingerprint")
    assert (easy / cell).read_text() != (hard / cell).read_text()  # on different data
    across = json.loads((out / "across.json").read_text())
    assert across["datasets"] == ["easy", "hard"] and across["baseline"] == "plain"
    item = across["arms"][0]
    means = [pd.read_csv(out / "datasets" / d / "results.csv").groupby("arm")["accuracy"].mean() for d in ("easy", "hard")]
    assert [across["scores"][d]["se"] for d in ("easy", "hard")] == pytest.approx([m["se"] for m in means])
    assert item["sentence"].startswith(f"se better on {len(item['better_on'])} of 2 datasets")
    assert "cannot reach p < 0.05" in item["wilcoxon"]["error"]
    assert 0 <= item["bayes"]["p_a_better"] <= 1
    report = (out / "report.html").read_text()
    assert 'id="across"' in report and 'href="datasets/easy/report.html"' in report and item["sentence"] in report
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0 and 'id="across"' in (out / "report.html").read_text()  # re-rendered
    assert main(["compare", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "== dataset easy ==" in printed and "== dataset hard ==" in printed and item["sentence"] in printed
    assert main(["compare", str(out), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"datasets", "across"}
