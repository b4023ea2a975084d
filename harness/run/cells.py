"""One cell's files: its scores and predictions written once it ends, read back to aggregate a study."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness.data.prepared import PreparedData
from harness.data.splits import Fold
from harness.run.faults import kill_point
from harness.run.trainer import FoldOutcome
from harness.rundir import Cell, RunDir
from harness.stats.flags import baseline_rates, training_flag
from harness.stats.metrics import classification_metrics
from harness.study.loader import Arm


def is_done(cell: Path, fingerprint: str) -> bool:
    """The cell finished with these settings and this data (its result.json carries the fingerprint)."""
    try:
        stored = Cell(cell).result()
    except (OSError, ValueError):
        return False
    return bool(stored.get("fingerprint") == fingerprint)


def _scores(arm: Arm, fold: Fold, data: PreparedData, outcome: FoldOutcome) -> tuple[dict[str, float], list[str], pd.DataFrame]:
    """Metrics of the validation fold (and test_* of the held-out part), why any is undefined, predictions."""
    table, n_classes = data.table, data.num_classes
    frames, metrics, notes = [], {}, []
    for role, idx, probs in (("val", fold.val, outcome.val_probs), ("test", data.splits.test, outcome.test_probs)):
        if len(idx) == 0:
            continue
        y_true = table.labels[idx]
        role_notes: list[str] = []
        if np.isfinite(probs).all():
            role_metrics = classification_metrics(y_true, probs, n_classes, role_notes)
            role_metrics["loss"] = float(-np.mean(np.log(probs[np.arange(len(idx)), y_true] + 1e-12)))
        else:  # diverged before any usable epoch: no score is honest, so none is given
            keys = [*classification_metrics(y_true, np.nan_to_num(probs), n_classes), "loss"]
            role_metrics = dict.fromkeys(keys, float("nan"))
            role_notes.append("metrics are NaN: the model's probabilities are not finite")
        notes += [f"{role}: {n}" for n in role_notes]
        prefix = "" if role == "val" else "test_"
        metrics.update({prefix + k: v for k, v in role_metrics.items()})
        frame = pd.DataFrame({"arm": arm.name, "repeat": fold.repeat, "fold": fold.fold, "role": role,
                              "sample_id": [table.sample_ids[i] for i in idx], "y_true": y_true,
                              "y_pred": probs.argmax(1)})
        for c in range(n_classes):
            frame[f"p_{c}"] = probs[:, c]
        frames.append(frame)
    return metrics, notes, pd.concat(frames)


def write_cell(cell: Path, arm: Arm, fold: Fold, data: PreparedData, outcome: FoldOutcome, fingerprint: str,
               cost: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """history.csv, predictions.csv, then result.json (written last: it marks the cell done);
    the result and its metrics."""
    metrics, metric_notes, predictions = _scores(arm, fold, data, outcome)
    rates = baseline_rates(data.table.labels[fold.val], data.num_classes)
    result = {"arm": arm.name, "repeat": fold.repeat, "fold": fold.fold, "status": outcome.status,
              **metrics, "epochs": outcome.epochs_run,
              "best_epoch": outcome.best_epoch if outcome.best_epoch >= 0 else None,
              "scored_epoch": outcome.scored_epoch, "selection": arm.training.selection.rule,
              "seconds": outcome.seconds, "n_train": len(fold.fit), "n_inner": len(fold.inner),
              "n_val": len(fold.val), "params": cost["params"], "flops": cost["flops"],
              "note": "; ".join(n for n in (outcome.note, *metric_notes) if n),
              **rates, "training_flag": training_flag(outcome.history, outcome.best_epoch, rates["majority_rate"]),
              "threads": torch.get_num_threads(),  # CPU float order depends on it: a cell's numbers do too
              "fingerprint": fingerprint}
    files = Cell(cell)
    files.write_history(outcome.history)
    files.write_predictions(predictions)
    kill_point("cell-files-written")
    files.write_result(result)
    kill_point("result-written")
    prune_checkpoints(cell, arm.training.checkpoints)
    return result, metrics


def prune_checkpoints(cell: Path, policy: str) -> None:
    """A finished cell needs no resume state: keep the scored weights only (or as ``checkpoints`` says)."""
    Cell(cell).forget(result=False, last=policy != "all", best=policy == "none")


def aggregate(run_dir: Path, cells: Iterable[tuple[Path, str]]) -> pd.DataFrame:
    """results.csv and predictions.csv from the finished ``(cell, fingerprint)`` pairs, in their order."""
    rows, predictions = [], []
    for cell, fingerprint in cells:
        if not is_done(cell, fingerprint):
            continue
        result = Cell(cell).result()
        result.pop("fingerprint", None)
        rows.append(result)
        predictions.append(Cell(cell).predictions())
    results = pd.DataFrame(rows)
    run = RunDir(run_dir)
    run.write_results(results)
    # no finished cell: no earlier run's predictions beside the empty results
    run.write_predictions(pd.concat(predictions) if predictions else None)
    return results


def mixed_threads(results: pd.DataFrame, setting: int | None = None) -> str:
    """A warning when the run's cells trained with different CPU thread counts, or all with one count other than
    this run's ``setting`` (training.threads; they were reused) ('' when neither): a CPU's float order depends on
    the count, so such cells do not reproduce bit for bit under any one setting, or under the run's study.yaml."""
    counts = sorted({int(n) for n in results.get("threads", pd.Series(dtype=float)).dropna()})
    if len(counts) == 1 and setting is not None and counts[0] != setting:
        return (f"every cell trained with {counts[0]} CPU thread(s), but this run's training.threads is {setting} "
                "(the cells were reused: the thread count is not in a cell's fingerprint), so on a CPU its study.yaml "
                f"does not reproduce them: rerun with --threads {counts[0]}, or with --fresh to train with {setting}")
    if len(counts) < 2:
        return ""
    return (f"cells trained with {', '.join(map(str, counts))} CPU threads (a resumed run with another --threads or "
            "--workers); on a CPU the float order, so each cell's numbers, depends on the thread count: set "
            "training.threads (or --threads) and rerun with --fresh for numbers one setting reproduces")
