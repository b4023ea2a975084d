"""A run of several settings analysed: a setting's verdict needs Holm across the settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.stats._runfiles import load_run
from harness.stats.compare import compare_run
from harness.stats.settings_run import analyse_settings


def _setting_run(root: Path, differences: np.ndarray, folds: int) -> Path:
    """A run directory compare reads: arms 'plain' and 'se' = plain + differences, (repeat, fold) cells."""
    root.mkdir(parents=True)
    plain = 0.7 + 0.01 * np.sin(np.arange(len(differences)))
    rows = [{"arm": arm, "repeat": i // folds, "fold": i % folds, "status": "ok", "n_train": 80, "n_val": 20,
             "accuracy": v + (d if arm == "se" else 0.0)}
            for arm in ("plain", "se") for i, (v, d) in enumerate(zip(plain, differences, strict=True))]
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    (root / "study.yaml").write_text(yaml.safe_dump({"name": "s", "seed": 0, "compare": {"baseline": "plain", "rope": 0.0}}))
    return root


def test_a_setting_verdict_needs_holm_across_settings(tmp_path: Path) -> None:
    """Three settings: se 'better' at one with corrected-t p ~0.03 (P(better) > 0.975 there) and nothing elsewhere.
    Holm over the three settings gives p ~0.09: the across-settings verdict and sentence say inconclusive (a false
    better at some setting is otherwise up to three times as likely as at one)."""
    z = np.random.default_rng(7).standard_normal(10)
    z = (z - z.mean()) / z.std(ddof=1)
    shape = {"lr-0.1": 0.02 * (z + 2.6 * np.sqrt(0.35)), "lr-0.01": 0.02 * z, "lr-0.001": 0.02 * z[::-1]}
    comparisons, tables = {}, {}
    for sid, d in shape.items():
        run = _setting_run(tmp_path / sid, d, folds=5)
        comparisons[sid], tables[sid] = compare_run(run), load_run(run).table()
    assert comparisons["lr-0.1"].arms[0].verdict == "better"  # at this setting alone
    p = comparisons["lr-0.1"].arms[0].tests["corrected_t"]["pvalue"]
    assert 0.05 / 3 < p < 0.05
    analysis = analyse_settings(comparisons, tables, axis="lr", span=1.0, bounds=(0.0, 1.0))
    item = analysis["arms"][0]["per_setting"]["lr-0.1"]
    assert item["verdict"] == "inconclusive" and item["holm_p"] == pytest.approx(min(1.0, 3 * p))
    assert "Holm" in item["verdict_note"] and "Holm" in item["verdict_text"]
    assert "inconclusive after Holm across settings" in analysis["arms"][0]["sentence"]
