"""The HTML report: build plain :class:`ReportData` from a run directory, then render it with Jinja.

Everything comes from stored outputs (results, predictions, histories, checkpoints, the decoded
image cache); nothing is retrained. Jinja autoescapes every user string (class, arm, study names).
"""

from __future__ import annotations

import json
import math
import warnings as pywarnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import __version__
from harness.atomic import atomic_write_text, remove_temp_leftovers
from harness.logs import log
from harness.report.answer import Answer, build_answer, group_scores
from harness.report.plots import arm_curves_png
from harness.run import rundir as files
from harness.study.arm_identity import identical_arms

METRICS = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro",
           "precision_weighted", "recall_weighted", "f1_weighted", "roc_auc_ovr")


@dataclass
class MetricSummary:
    mean: float
    sd: float
    low: float  # 95 % interval of the mean over folds (corrected variance for CV scores)
    high: float


@dataclass
class ArmSummary:
    name: str
    backbone: str
    attention: str
    params: int
    flops: int
    folds: int
    metrics: dict[str, MetricSummary]
    test_metrics: dict[str, MetricSummary]
    seconds: float
    throughput: float  # training images per second
    highlight: bool = False


@dataclass
class ReportData:
    study_name: str
    created: str
    harness_version: str
    plugins: list[dict[str, str]]
    git_commit: str
    device: str
    seed: int
    protocol: str
    study_yaml: str
    class_names: list[str]
    arms: list[ArmSummary]
    per_fold: list[dict[str, Any]]
    confusion: dict[str, list[list[int]]]
    confusion_normalized: dict[str, list[list[float]]]
    per_class: dict[str, list[dict[str, Any]]]
    curves: dict[str, str]  # metric (loss, accuracy) -> base64 PNG with every arm
    significance: dict[str, Any] | None = None  # stats.json (harness.stats.compare)
    gallery: dict[str, str] = field(default_factory=dict)
    insight: dict[str, dict[str, str]] = field(default_factory=dict)
    tuning: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    sections: list[dict[str, Any]] = field(default_factory=list)
    answer: Answer | None = None
    dataset: dict[str, Any] | None = None  # data_summary.json: class/group counts, fold balance
    group_scores: list[dict[str, Any]] = field(default_factory=list)  # per clinical unit (group x class)
    majority_rate: float | None = None  # mean over cells: always predicting the training majority class
    chance_rate: float | None = None


def protocol_text(study: dict[str, Any], has_test: bool = False) -> str:
    """One line a reviewer needs: CV design, test split, selection rule, augmentation and init policy."""
    cv = study["cv"]
    kind = "stratified " if cv.get("stratify", True) else ""
    text = f"{cv['folds']}-fold {kind}CV"
    if cv.get("group"):
        text += f" grouped by {cv['group']}"
    parts = [text, f"{cv['repeats']} repeat{'s' if cv['repeats'] != 1 else ''}"]
    if cv.get("test_fraction"):
        parts.append(f"held-out test {cv['test_fraction'] * 100:g} %")
    elif has_test:
        parts.append("held-out test: the dataset's official split")
    parts.append(_selection_text(study.get("training", {})))
    augment = study.get("dataset", {}).get("augment")
    if isinstance(augment, dict) and "preset" in augment:
        from harness.study.schema import AugmentSpec

        parts.append(f"augmentation: {AugmentSpec.model_validate(augment).describe()}")
    elif augment is not None:
        parts.append("augmentation: the older default (flips, rotation, zoom, shift, brightness, contrast)")
    init = study.get("init")
    parts.append({"standard": "init: standard (every BatchNorm weight 1; timm's zero_init_last off)",
                  "zero_last_bn": "init: zero_last_bn (each residual branch's last BatchNorm weight 0)",
                  None: "init: the backbone's own default"}.get(init, f"init: {init}"))
    parts += _training_options_text(study)
    from harness.study.schema import CVSpec
    from harness.study.seeding import describe

    try:
        varied = describe(CVSpec.model_validate(cv))
    except ValueError:  # an older or hand-edited study.yaml: the line stays as it was
        varied = ""
    return ", ".join(parts + ([varied] if varied else []))


def _training_options_text(study: dict[str, Any]) -> list[str]:
    """Warmup, gradient clipping and EMA where declared (nothing when off), per arm where arms differ."""
    from harness.run.training_options import describe

    arms = {name: describe(arm.get("training") or {}) for name, arm in (study.get("arms") or {}).items()}
    if not arms or len({tuple(v) for v in arms.values()}) == 1:
        return next(iter(arms.values())) if arms else describe(study.get("training") or {})
    return [f"{name}: {'; '.join(phrases) or 'no warmup, clipping or EMA'}" for name, phrases in arms.items()]


def _selection_text(training: dict[str, Any]) -> str:
    selection = training.get("selection")
    if selection is None:  # a run from before selection was declared: it restored the best validation epoch
        return "model selection: best epoch on the scored fold itself (older run: optimistic)"
    stopping = training.get("early_stopping") or {}
    fraction = selection.get("inner_fraction")
    rule = ("the best inner epoch is scored" if selection.get("rule") == "best" else "the last epoch is scored")
    if fraction is None:
        return "model selection: none, the last epoch is scored"
    chosen = []
    if stopping.get("patience"):
        chosen.append(f"early stopping on {stopping.get('monitor')} (patience {stopping['patience']})")
    chosen.append(rule)
    return (f"model selection on an inner split ({fraction * 100:g} % of each fold's training part, "
            f"never the scored fold): {'; '.join(chosen)}")


def summarize(values: pd.Series, test_train_ratio: float | None = None, metric: str | None = None) -> MetricSummary:
    """Mean, sd and the 95 % interval of the mean: with ``test_train_ratio`` (CV scores) the corrected variance
    s^2 (1/n + n_test/n_train) and t(n-1), clipped to the metric's range; without it, t with sd/sqrt(n)."""
    from scipy import stats

    from harness.stats import StatsError, corrected_interval, resolve_metric

    clean = values.dropna()
    n = len(clean)
    mean = float(clean.mean()) if n else math.nan
    sd = float(clean.std(ddof=1)) if n > 1 else math.nan
    if test_train_ratio is not None and n > 1:
        info = resolve_metric(metric or "accuracy")
        try:
            ci = corrected_interval(clean.to_numpy(), test_train_ratio=test_train_ratio, bounds=(info.low, info.high))
            return MetricSummary(mean, sd, ci.low, ci.high)
        except StatsError:
            return MetricSummary(mean, sd, math.nan, math.nan)
    half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) if n > 1 else math.nan
    return MetricSummary(mean, sd, mean - half, mean + half)


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> list[dict[str, Any]]:
    """Precision, recall (= sensitivity), F1, specificity and support per class, pooled out of fold."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    rows = []
    for c, name in enumerate(class_names):
        tn = matrix.sum() - matrix[c].sum() - matrix[:, c].sum() + matrix[c, c]
        fp = matrix[:, c].sum() - matrix[c, c]
        rows.append({"class": name, "precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                     "specificity": float(tn / (tn + fp)) if tn + fp else math.nan, "support": int(support[c])})
    return rows


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def build_report_data(run_dir: Path, registry: Any = None, *, insight: bool = True) -> ReportData:
    """Everything the report shows, computed from the stored run outputs (no retraining)."""
    import yaml

    results = files.read_results(run_dir)  # one message for a missing, empty or mismatched results.csv
    study_text = (run_dir / files.STUDY).read_text()
    study = yaml.safe_load(study_text)
    run_info = _read_json(run_dir / files.RUN_INFO, {})
    arms_info = _read_json(run_dir / files.ARMS, {})
    class_names = [str(c) for c in _read_json(run_dir / files.CLASSES, [])]
    predictions = pd.read_csv(run_dir / files.PREDICTIONS) if (run_dir / files.PREDICTIONS).exists() else pd.DataFrame()
    significance = _read_json(run_dir / files.STATS, None)
    warnings = [f"dataset: {n}" for n in run_info.get("data_notes", [])]
    if (run_dir / files.SKIPPED).exists():
        skipped = pd.read_csv(run_dir / files.SKIPPED)
        warnings += [f"skipped image {row.path}: {row.reason}" for row in skipped.itertuples()]
    better = {c["arm"] for c in (significance or {}).get("arms", [])
              if c["verdict"] == "better" and c.get("holm_p") is not None and c["holm_p"] < significance["alpha"]}
    arms = []
    ratio = float((results["n_val"] / results["n_train"]).mean())  # n_test / n_train of the CV folds
    for name, group in results.groupby("arm", sort=False):
        info = arms_info.get(name, {})
        seconds = float(group["seconds"].sum())
        images_seen = float((group["n_train"] * group["epochs"]).sum())
        arms.append(ArmSummary(
            name=str(name), backbone=info.get("backbone", ""), attention=info.get("attention", ""),
            params=int(info.get("params", 0)), flops=int(info.get("flops", 0)), folds=len(group),
            metrics={m: summarize(group[m], ratio, m) for m in METRICS if m in group},
            test_metrics={m: summarize(group[f"test_{m}"]) for m in METRICS if f"test_{m}" in group},
            seconds=seconds, throughput=images_seen / seconds if seconds else math.nan, highlight=name in better))
        warnings += [f"{name}: {note}" for note in info.get("notes", [])]
    for row in results.itertuples():
        if row.status != "ok":
            warnings.append(f"{row.arm} repeat {row.repeat} fold {row.fold}: {row.status} ({row.note})")
    warnings += [f"{f}" for f in run_info.get("failures", [])]
    warnings += identical_arms(study.get("arms") or {})
    if significance:
        warnings += [f"statistics: {w}" for w in significance["warnings"]]
    confusion, normalized, per_class = {}, {}, {}
    if not predictions.empty:
        from sklearn.metrics import confusion_matrix

        oof = predictions[predictions["role"] == "val"]
        for name, group in oof.groupby("arm", sort=False):
            matrix = confusion_matrix(group["y_true"], group["y_pred"], labels=list(range(len(class_names))))
            confusion[str(name)] = matrix.tolist()
            with np.errstate(invalid="ignore"):
                normalized[str(name)] = np.nan_to_num(matrix / matrix.sum(1, keepdims=True)).round(3).tolist()
            per_class[str(name)] = per_class_table(group["y_true"].to_numpy(), group["y_pred"].to_numpy(), class_names)
    histories = {arm.name: [pd.read_csv(p) for p in sorted((run_dir / files.CELLS / arm.name).glob(f"*/{files.HISTORY}"))]
                 for arm in arms}
    histories = {k: v for k, v in histories.items() if v}
    curves = {m: arm_curves_png(histories, m) for m in ("loss", "accuracy")} if histories else {}
    columns = [c for c in ("arm", "repeat", "fold", "status", "accuracy", "majority_rate", "f1_macro", "loss",
                           "test_accuracy", "epochs", "scored_epoch", "best_epoch", "seconds", "training_flag") if c in results]
    if "training_flag" in results:  # flagged cells: in the answer box, the per-fold table and compare's warnings
        results["training_flag"] = results["training_flag"].fillna("")
    data = ReportData(
        study_name=study["name"], created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        harness_version=__version__, plugins=run_info.get("plugins", []), git_commit=run_info.get("study_git_commit", ""),
        device=str(run_info.get("device", "")), seed=int(study["seed"]),
        protocol=protocol_text(study, "test_accuracy" in results), study_yaml=study_text, class_names=class_names,
        arms=arms, per_fold=results[columns].to_dict("records"),  # type: ignore[arg-type]
        confusion=confusion, confusion_normalized=normalized, per_class=per_class, curves=curves,
        significance=significance, tuning=_read_json(run_dir / files.TUNING, None), warnings=warnings,
        answer=build_answer(study, significance, results, protocol_text(study, "test_accuracy" in results)),
        dataset=_read_json(run_dir / files.DATA_SUMMARY, None),
        majority_rate=float(results["majority_rate"].mean()) if "majority_rate" in results else None,
        chance_rate=1.0 / len(class_names) if class_names else None)
    if (run_dir / files.SPLITS).exists() and not predictions.empty:
        data.group_scores = group_scores(predictions, pd.read_csv(run_dir / files.SPLITS, keep_default_na=False),
                                         len(class_names))
    if insight and not predictions.empty:
        _add_insight(data, run_dir, study, registry, predictions)
    return data


def _add_insight(data: ReportData, run_dir: Path, study_dict: dict[str, Any], registry: Any, predictions: pd.DataFrame) -> None:
    """Misclassified gallery, SE excitations and Grad-CAM; a failure here is a warning, never a lost report."""
    from harness.registry import load_registry
    from harness.report.insight import attention_insight, load_run_images, misclassified_gallery
    from harness.study.loader import load_study

    try:
        registry = registry or load_registry(study_dict.get("plugins", []))
        study = load_study(run_dir / files.STUDY)
        run_info = _read_json(run_dir / files.RUN_INFO, {})
        study_dir = Path(run_info["study_dir"]) if run_info.get("study_dir") else None
        images = load_run_images(run_dir, study, registry, study_dir)
        splits = pd.read_csv(run_dir / files.SPLITS, keep_default_na=False)
        results = pd.read_csv(run_dir / files.RESULTS)
        groups = dict(zip(splits.sample_id.astype(str), splits.group.astype(str), strict=True))
        for arm in data.arms[:6]:
            gallery = misclassified_gallery(predictions, images, data.class_names, arm.name, groups)
            if gallery:
                data.gallery[arm.name] = gallery
            if any((run_dir / files.CELLS / arm.name).glob(f"*/{files.BEST}")):
                data.insight[arm.name] = attention_insight(
                    run_dir, arm.name, study_dict["arms"][arm.name], registry, images, predictions, splits,
                    data.class_names, study.spec.dataset.image_size, results)
    except Exception as exc:  # the numbers are the report; pictures are a bonus
        data.warnings.append(f"attention insight and gallery skipped: {type(exc).__name__}: {exc}")


def _environment(registry: Any = None):  # type: ignore[no-untyped-def]
    from importlib.resources import files

    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(files("harness_reports"))),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["pct"] = lambda v: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"
    env.filters["num"] = lambda v, f="%.3f": "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f % v
    env.filters["thousands"] = lambda v: f"{v:,}"
    if registry is not None:
        env.filters.update(registry.report_filters(reserved=env.filters))
    return env


def render_report(data: ReportData, registry: Any = None, run_dir: Path | None = None) -> str:
    env = _environment(registry)
    if registry is not None and run_dir is not None:
        from harness.contracts import ReportContext

        for section in registry.report_sections(ReportContext(run_dir, data)):
            html = env.from_string(section.template).render(**section.context, data=data)
            data.sections.append({"title": section.title, "html": html})
    return env.get_template("report.html.j2").render(data=data, metrics=METRICS)


def write_report(run_dir: Path, registry: Any = None, out: Path | None = None, *, trust_plugins: bool = False) -> Path:
    """Render report.html (or ``out``). Without ``registry`` the plugin modules the run's study.yaml names are
    imported only when ``trust_plugins`` (they are code): otherwise the report says which it skipped."""
    skipped: list[str] = []
    if registry is None:
        import yaml

        from harness.registry import load_registry

        named = [str(m) for m in (yaml.safe_load((run_dir / files.STUDY).read_text()) or {}).get("plugins") or []]
        skipped = [] if trust_plugins else named
        with pywarnings.catch_warnings():
            pywarnings.simplefilter("ignore")
            registry = load_registry(named if trust_plugins else [])
        if skipped:
            log.warning(f"report: not importing the plugin module(s) {', '.join(skipped)} named in "
                        f"{run_dir / files.STUDY} (plugins are code); pass --trust-plugins to use them")
    target = out or run_dir / files.REPORT
    remove_temp_leftovers(target.parent, frozenset({target.name}))  # a killed report's half-written file
    data = build_report_data(run_dir, registry)
    data.warnings += [f"plugin {m} (named in study.yaml) not imported: rerun harness report with --trust-plugins "
                      "to include what it adds" for m in skipped]
    atomic_write_text(target, render_report(data, registry, run_dir))
    return target


def write_comparison(run_a: Path, run_b: Path, out: Path) -> Path:
    """Two runs' arms side by side; paired statistics only when both used identical splits."""
    a, b = build_report_data(run_a, insight=False), build_report_data(run_b, insight=False)
    same_splits = (run_a / files.SPLITS).read_bytes() == (run_b / files.SPLITS).read_bytes()
    notes = [] if same_splits else ["the two runs used different splits: their folds are not paired, so no paired "
                                    "test is made between them; compare means and intervals only"]
    html = _environment().get_template("compare.html.j2").render(runs=[(run_a.name, a), (run_b.name, b)],
                                                                  metrics=METRICS, notes=notes, same_splits=same_splits)
    atomic_write_text(out, html)
    return out
