"""The HTML report: build plain :class:`ReportData` from a run directory, then render it with Jinja.

Everything comes from stored outputs (results, predictions, histories, checkpoints, the decoded
image cache); nothing is retrained. Jinja autoescapes every user string (class, arm, study names).
"""

from __future__ import annotations

import math
import warnings as pywarnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import __version__
from harness import rundir as files
from harness.atomic import remove_temp_leftovers
from harness.logs import log
from harness.report.answer import Answer, build_answer, group_scores
from harness.report.plots import arm_curves_png
from harness.run.determinism import VARIES
from harness.run.determinism import describe as describe_compute
from harness.rundir import RunDir
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
    duplicates: str | None = None  # base64 PNG: thumbnails of the duplicate-image clusters (duplicates.csv)
    insight: dict[str, dict[str, str]] = field(default_factory=dict)
    tuning: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    sections: list[dict[str, Any]] = field(default_factory=list)
    answer: Answer | None = None
    dataset: dict[str, Any] | None = None  # data_summary.json: class/group counts, fold balance
    group_scores: list[dict[str, Any]] = field(default_factory=list)  # per clinical unit (group x class)
    majority_rate: float | None = None  # mean over cells: always predicting the training majority class
    chance_rate: float | None = None
    metric: str = "accuracy"  # the study's comparison metric: it leads the answer box and the per-fold table
    protocol_parts: list[str] = field(default_factory=list)


def protocol_text(study: dict[str, Any], has_test: bool = False) -> str:
    """One line a reviewer needs: CV design, test split, selection rule, augmentation and init policy."""
    return ", ".join(protocol_parts(study, has_test))


def protocol_parts(study: dict[str, Any], has_test: bool = False) -> list[str]:
    """The protocol line's parts, in order (the side-by-side report prints the shared ones once)."""
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
    from harness.seeds import describe
    from harness.study.schema import CVSpec

    try:
        varied = describe(CVSpec.model_validate(cv))
    except ValueError:  # an older or hand-edited study.yaml: the line stays as it was
        varied = ""
    return parts + ([varied] if varied else [])


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


def build_report_data(run_dir: Path, registry: Any = None, *, insight: bool = True) -> ReportData:
    """Everything the report shows, computed from the stored run outputs (no retraining)."""

    run = RunDir(run_dir)
    results = run.results()  # one message for a missing, empty or mismatched results.csv
    study_text = run.study_text()  # shown as it is in the report
    study = run.study()
    run_info = run.run_info()
    arms_info: dict[Any, Any] = run.arms_info()
    class_names = run.classes()
    stored_predictions = run.predictions()
    predictions = pd.DataFrame() if stored_predictions is None else stored_predictions
    significance: Any = run.stats()
    warnings = [f"dataset: {n}" for n in run_info.get("data_notes", [])]
    skipped = run.skipped()
    if skipped is not None:
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
    warnings += [str(w) for w in run_info.get("warnings", [])]
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
    histories = {arm.name: run.histories(arm.name) for arm in arms}
    histories = {k: v for k, v in histories.items() if v}
    curves = {m: arm_curves_png(histories, m) for m in ("loss", "accuracy")} if histories else {}
    metric = str((significance or {}).get("metric") or (study.get("compare") or {}).get("metric") or "accuracy")
    leading = [metric] if metric in results and metric not in ("accuracy", "majority_rate", "f1_macro", "loss") else []
    columns = [c for c in ("arm", "repeat", "fold", "status", *leading, "accuracy", "majority_rate", "f1_macro", "loss",
                           "test_accuracy", "epochs", "scored_epoch", "best_epoch", "seconds", "training_flag") if c in results]
    dataset = run.data_summary()
    if "training_flag" in results:  # flagged cells: in the answer box, the per-fold table and compare's warnings
        results["training_flag"] = results["training_flag"].fillna("")
    gpu = describe_compute(run_info)  # GPU reproducibility ('' on CPU)
    protocol = protocol_text(study, "test_accuracy" in results) + (f", {gpu}" if gpu else "")
    data = ReportData(
        study_name=study["name"], created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        harness_version=__version__, plugins=run_info.get("plugins", []), git_commit=run_info.get("study_git_commit", ""),
        device=str(run_info.get("device", "")), seed=int(study["seed"]),
        protocol=protocol, study_yaml=study_text,
        protocol_parts=protocol_parts(study, "test_accuracy" in results) + ([gpu] if gpu else []),
        class_names=class_names,
        arms=arms, per_fold=results[columns].to_dict("records"),  # type: ignore[arg-type]
        confusion=confusion, confusion_normalized=normalized, per_class=per_class, curves=curves,
        significance=significance, tuning=run.tuning(), warnings=warnings,
        answer=build_answer(study, significance, results, protocol,
                            _scored_class_counts(dataset, significance), _summaries(arms, metric)),
        dataset=dataset, metric=metric,
        majority_rate=float(results["majority_rate"].mean()) if "majority_rate" in results else None,
        chance_rate=1.0 / len(class_names) if class_names else None)
    if VARIES in gpu and data.answer is not None:
        data.answer.sentences.append(f"Caution: {VARIES}; rerunning this study may change these numbers.")
    splits = run.splits(keep_default_na=False) if not predictions.empty else None
    if splits is not None:
        data.group_scores = group_scores(predictions, splits,
                                         len(class_names))
    if insight and not predictions.empty:
        _add_insight(data, run_dir, registry)
    return data


def _scored_class_counts(dataset: dict[str, Any] | None, significance: dict[str, Any] | None) -> list[list[int]]:
    """The class counts of each scored set: every fold's validation part, or the held-out test set."""
    if not dataset:
        return []
    if (significance or {}).get("scope") == "held-out test set" and dataset.get("test_counts"):
        return [list(dataset["test_counts"])]
    return [list(f["val"]) for f in dataset.get("folds", [])] or [list(dataset.get("class_counts", []))]


def _summaries(arms: list[ArmSummary], metric: str) -> dict[str, tuple[float, float, float]]:
    return {a.name: (s.mean, s.low, s.high) for a in arms if (s := a.metrics.get(metric))}


def _add_insight(data: ReportData, run_dir: Path, registry: Any) -> None:
    """The stored insight (insight.json, written at the end of the run): gallery, SE excitations, Grad-CAM and the
    flat-gate sentences. A run that has none (made with --no-report, or by an older version) gets it computed once
    here from its checkpoints and stored; the report says so."""
    from harness.report.insight import flat_gate_sentences, read_insight

    insight = read_insight(run_dir)
    if insight is None:
        from harness.report.insight import write_insight

        try:
            insight = write_insight(run_dir, registry or _builtin_registry())
        except Exception as exc:  # the numbers are the report; pictures are a bonus
            insight = {"warnings": [f"attention insight and gallery skipped: {type(exc).__name__}: {exc}"]}
        data.warnings.append(f"the run had not stored its insight data; computed now from its checkpoints and "
                             f"stored in {files.INSIGHT}")
    data.duplicates = insight.get("duplicates")
    data.gallery = dict(insight.get("gallery", {}))
    data.insight = {arm: {k: v for k, v in parts.items() if isinstance(v, str)}
                    for arm, parts in insight.get("arms", {}).items()}
    data.warnings += list(insight.get("warnings", []))
    if data.answer is not None:
        data.answer.gates = flat_gate_sentences(insight)


def _builtin_registry():  # type: ignore[no-untyped-def]
    """The built-in components only: a run directory's own plugin modules are code, imported only when trusted."""
    from harness.registry import load_registry

    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore")
        return load_registry([])


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
    unavailable = ""
    run = RunDir(run_dir)
    run.results()  # a folder that holds no finished run: one message, before study.yaml is read
    if registry is None:

        from harness.registry import load_registry

        named = [str(m) for m in run.study().get("plugins") or []]
        skipped = [] if trust_plugins else named
        try:  # only for the plugins' report sections and filters: the data come from stored files
            with pywarnings.catch_warnings():
                pywarnings.simplefilter("ignore")
                registry = load_registry(named if trust_plugins else [])
        except Exception as exc:
            unavailable = f"plugin report sections skipped: the plugins could not be loaded ({type(exc).__name__}: {exc})"
        if skipped:
            log.warning(f"report: not importing the plugin module(s) {', '.join(skipped)} named in "
                        f"{run.path_of(files.STUDY)} (plugins are code); pass --trust-plugins to use them")
    target = out or run.report_path
    remove_temp_leftovers(target.parent, frozenset({target.name}))  # a killed report's half-written file
    data = build_report_data(run_dir, registry)
    data.warnings += [unavailable] if unavailable else []
    data.warnings += [f"plugin {m} (named in study.yaml) not imported: rerun harness report with --trust-plugins "
                      "to include what it adds" for m in skipped]
    return run.write_report(render_report(data, registry, run_dir), target)
