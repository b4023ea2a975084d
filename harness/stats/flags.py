"""Training that failed is not "ok": flags for a cell that never learned, next to the rates it should beat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def baseline_rates(y_val: np.ndarray, n_classes: int) -> dict[str, float]:
    """The validation accuracy of always predicting its largest class (the no-information rate: the best
    any constant prediction can score there), and of guessing uniformly."""
    counts = np.bincount(y_val, minlength=n_classes)
    return {"majority_rate": float(counts.max() / len(y_val)) if len(y_val) else float("nan"),
            "chance_rate": 1.0 / n_classes}


NEVER_LEARNED = "validation accuracy never beat the majority-class rate"


def training_flag(history: Sequence[dict[str, Any]], best_epoch: int, majority_rate: float) -> str:
    """'' when training looks fine, else why not: validation accuracy never above the majority-class rate,
    or the best epoch is the first of several (later epochs only made it worse)."""
    reasons = []
    accuracies = [float(row["val_accuracy"]) for row in history if np.isfinite(row["val_accuracy"])]
    if accuracies and max(accuracies) <= majority_rate + 1e-12:
        reasons.append(f"{NEVER_LEARNED} ({100 * majority_rate:.1f} %; "
                       f"best {100 * max(accuracies):.1f} %)")
    if best_epoch == 1 and len(history) >= 2:
        reasons.append(f"best epoch is the first of {len(history)}")
    return "; ".join(reasons)


def training_flag_warnings(results: pd.DataFrame) -> list[str]:
    """One line per cell whose training was flagged; its scores still count in the comparison."""
    if "training_flag" not in results:
        return []
    flags = results["training_flag"]  # all NaN (float) when no cell was flagged: no str fill (pandas warns)
    flagged = results[flags.notna() & (flags.astype(str) != "")]
    return [f"{r.arm} repeat {r.repeat} fold {r.fold}: training failed? {r.training_flag}" for r in flagged.itertuples()]


def never_learned(results: pd.DataFrame, arm: str) -> bool:
    """Every cell of ``arm`` is flagged as never beating the majority-class rate (its training failed throughout)."""
    if "training_flag" not in results:
        return False
    flags = results.loc[results["arm"].astype(str) == arm, "training_flag"]
    return bool(len(flags)) and bool(flags.map(lambda f: isinstance(f, str) and NEVER_LEARNED in f).all())
