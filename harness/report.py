"""The HTML report: build plain :class:`ReportData` from a run directory, then render it with Jinja."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import __version__
from harness.atomic import atomic_write_text
from harness.errors import HarnessError

METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
           "precision_weighted", "recall_weighted", "f1_weighted", "roc_auc_ovr")


@dataclass
class ArmSummary:
    name: str
    backbone: str
    attention: str
    params: int
    flops: int
    folds: int
    metrics: dict[str, tuple[float, float]]  # metric -> (mean, sd)
    seconds: float


@dataclass
class ReportData:
    study_name: str
    created: str
    harness_version: str
    device: str
    seed: int
    protocol: str
    study_yaml: str
    class_names: list[str]
    arms: list[ArmSummary]
    per_fold: list[dict[str, Any]]
    confusion: dict[str, list[list[int]]]
    curves: dict[str, str]  # arm -> base64 PNG
    significance: dict[str, Any] | None = None  # stats.json (harness.compare)
    warnings: list[str] = field(default_factory=list)


def protocol_text(study: dict[str, Any]) -> str:
    cv = study["cv"]
    parts = [f"{cv['folds']}-fold {'stratified ' if cv.get('stratify', True) else ''}CV"]
    if cv.get("group"):
        parts[0] += f" grouped by {cv['group']}"
    parts.append(f"{cv['repeats']} repeat{'s' if cv['repeats'] != 1 else ''}")
    if cv.get("test_fraction"):
        parts.append(f"held-out test {cv['test_fraction'] * 100:g} %")
    return ", ".join(parts)


def _curve_png(histories: list[pd.DataFrame], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(8, 3), dpi=80)
    for h in histories:
        ax_loss.plot(h["epoch"], h["train_loss"], color="tab:blue", alpha=0.4)
        ax_loss.plot(h["epoch"], h["val_loss"], color="tab:orange", alpha=0.4)
        ax_acc.plot(h["epoch"], h["val_accuracy"], color="tab:orange", alpha=0.4)
        ax_acc.plot(h["epoch"], h["train_accuracy"], color="tab:blue", alpha=0.4)
    if histories:
        lr_axis = ax_acc.twinx()
        lr_axis.step(histories[0]["epoch"], histories[0]["lr"], color="gray", where="post", linestyle=":")
        lr_axis.set_ylabel("lr")
    ax_loss.set(title=f"{title}: loss (blue train, orange val)", xlabel="epoch")
    ax_acc.set(title="accuracy", xlabel="epoch")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def build_report_data(run_dir: Path) -> ReportData:
    """Everything the report shows, computed from the stored run outputs (no retraining)."""
    import yaml

    results_path = run_dir / "results.csv"
    if not results_path.exists() or results_path.stat().st_size == 0:
        raise HarnessError(f"{run_dir} has no results.csv yet; run the study first (harness run STUDY)")
    study_text = (run_dir / "study.yaml").read_text()
    study = yaml.safe_load(study_text)
    results = pd.read_csv(results_path)
    run_info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    arms_info = json.loads((run_dir / "arms.json").read_text()) if (run_dir / "arms.json").exists() else {}
    class_names = json.loads((run_dir / "classes.json").read_text())
    predictions = pd.read_csv(run_dir / "predictions.csv") if (run_dir / "predictions.csv").exists() else pd.DataFrame()
    warnings = list(f"dataset: {n}" for n in run_info.get("data_notes", []))
    if (run_dir / "skipped_images.csv").exists():
        skipped = pd.read_csv(run_dir / "skipped_images.csv")
        warnings += [f"skipped image {row.path}: {row.reason}" for row in skipped.itertuples()]
    arms = []
    for name, group in results.groupby("arm", sort=False):
        info = arms_info.get(name, {})
        arms.append(ArmSummary(
            name=str(name), backbone=info.get("backbone", ""), attention=info.get("attention", ""),
            params=int(info.get("params", 0)), flops=int(info.get("flops", 0)), folds=len(group),
            metrics={m: (float(group[m].mean()), float(group[m].std(ddof=1)) if len(group) > 1 else float("nan"))
                     for m in METRICS if m in group},
            seconds=float(group["seconds"].sum())))
        warnings += [f"{name}: {note}" for note in info.get("notes", [])]
    for row in results.itertuples():
        if row.status != "ok":
            warnings.append(f"{row.arm} repeat {row.repeat} fold {row.fold}: {row.status} ({row.note})")
    if study["cv"]["folds"] * study["cv"]["repeats"] < 10:
        warnings.append(f"only {study['cv']['folds'] * study['cv']['repeats']} paired scores per arm: "
                        "significance tests have little power")
    confusion: dict[str, list[list[int]]] = {}
    if not predictions.empty:
        from sklearn.metrics import confusion_matrix

        oof = predictions[predictions["role"] == "val"]
        for name, group in oof.groupby("arm", sort=False):
            confusion[str(name)] = confusion_matrix(group["y_true"], group["y_pred"],
                                                    labels=list(range(len(class_names)))).tolist()
    curves = {}
    for arm in arms:
        histories = [pd.read_csv(p) for p in sorted((run_dir / "cells" / arm.name).glob("*/history.csv"))]
        curves[arm.name] = _curve_png(histories, arm.name)
    per_fold: list[dict[str, Any]] = results[["arm", "repeat", "fold", "status", "accuracy", "f1_macro", "loss", "epochs", "seconds"]].to_dict("records")  # type: ignore[assignment]
    significance = json.loads((run_dir / "stats.json").read_text()) if (run_dir / "stats.json").exists() else None
    if significance:
        warnings += [f"statistics: {w}" for w in significance["warnings"]]
    return ReportData(
        study_name=study["name"], created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        harness_version=__version__, device=str(run_info.get("device", "")), seed=int(study["seed"]),
        protocol=protocol_text(study), study_yaml=study_text, class_names=class_names, arms=arms,
        per_fold=per_fold, confusion=confusion, curves=curves, significance=significance, warnings=warnings)


def render_report(data: ReportData) -> str:
    from importlib.resources import files

    from jinja2 import Environment, FileSystemLoader, select_autoescape

    folder = str(files("harness_reports"))
    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["pct"] = lambda v: "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.2f}"
    env.filters["thousands"] = lambda v: f"{v:,}"
    return env.get_template("report.html.j2").render(data=data, metrics=METRICS)


def write_report(run_dir: Path, registry: Any = None, out: Path | None = None) -> Path:
    target = out or run_dir / "report.html"
    atomic_write_text(target, render_report(build_report_data(run_dir)))
    return target
