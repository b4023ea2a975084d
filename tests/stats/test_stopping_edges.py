"""cv.stop_when_settled's bookkeeping on edge cases, from a hand-written results.csv (no training)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import yaml

from harness.run.stopping import SettledStop


def _run_dir(root: Path, repeats: int, folds: int) -> Path:
    """Two repeats of three arms: 'dead' has no finite score on any fold (every fold diverged)."""
    rng = np.random.default_rng(0)
    rows = [{"arm": arm, "repeat": r, "fold": f, "status": "ok", "n_train": 90, "n_val": 30,
             "accuracy": np.nan if arm == "dead" else 0.7 + (0.3 if arm == "good" else 0.0) + rng.normal(0, 0.01)}
            for arm in ("base", "good", "dead") for r in range(repeats) for f in range(folds)]
    pd.DataFrame(rows).to_csv(root / "results.csv", index=False)
    (root / "study.yaml").write_text(yaml.safe_dump({"name": "edge", "seed": 0, "compare": {"baseline": "base"}}))
    return root


def test_an_arm_without_finite_scores_ends_inconclusive_not_continue(tmp_path: Path) -> None:
    """It used to stay 'continue' in the final record ('ran all 2 repeats: ... dead continue')."""
    run = _run_dir(tmp_path, repeats=2, folds=4)
    spec = SimpleNamespace(cv=SimpleNamespace(repeats=2, folds=4, stop_when_settled=True),
                           compare=SimpleNamespace(metric="accuracy", baseline="base", alpha=0.05, rope=0.01))
    stop = SettledStop(run, spec, ["base", "good", "dead"])
    said: list[str] = []
    assert stop.look(0, 0, lambda: None, said.append) is False
    assert stop.record["decisions"]["dead"] == "continue"
    assert stop.look(1, 0, lambda: None, said.append) is True
    record = json.loads((run / "stopping.json").read_text())
    assert record["status"] == "exhausted" and record["decisions"]["dead"] == "inconclusive"
    assert "dead continue" not in said[-1]
