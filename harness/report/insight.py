"""Looking inside trained models for the report: SE excitations and gate statistics per class, Grad-CAM (captum)
and the misclassified examples. Computed once at the end of a run from the stored best checkpoints and the
decoded-image cache (no training) and stored in ``insight.json``, so the report renders from stored files only."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness import rundir as files
from harness.contracts import attention_modules
from harness.optional import MissingExtra, optional_import
from harness.report.plots import excitation_png, image_grid_png
from harness.rundir import RunDir

MAX_GALLERY = 12


@dataclass
class RunImages:
    """The run's decoded images and their sample ids, loaded through the dataset plugin (cache hit)."""

    pixels: torch.Tensor
    index: dict[str, int]


def load_run_images(run_dir: Path, study: Any, registry: Any, study_dir: Path | None = None) -> RunImages:
    from harness.data.images import decode_images
    from harness.data.prepared import load_table

    cache = RunDir(run_dir).cache()
    table = load_table(study, registry, cache, study_dir)
    decoded = decode_images(table.paths, study.spec.dataset.image_size, cache)
    return RunImages(decoded.pixels, {sid: i for i, sid in enumerate(table.sample_ids)})


def misclassified_gallery(predictions: pd.DataFrame, images: RunImages, class_names: list[str], arm: str,
                          groups: dict[str, str] | None = None) -> str | None:
    """The most confident out-of-fold mistakes, each captioned with its file, group, truth and prediction."""
    wrong = predictions[(predictions.arm == arm) & (predictions.role == "val") & (predictions.y_true != predictions.y_pred)]
    if wrong.empty:
        return None
    prob_columns = [f"p_{c}" for c in range(len(class_names))]
    wrong = wrong.assign(confidence=wrong[prob_columns].max(axis=1)).sort_values("confidence", ascending=False)
    wrong = wrong[wrong.sample_id.isin(images.index)].head(MAX_GALLERY)
    pictures = [images.pixels[images.index[s]].numpy() for s in wrong.sample_id]
    captions = [f"{_short(Path(str(s)).name)}" + (f"\ngroup {_short(groups[s])}" if groups and groups.get(s) else "")
                + f"\ntrue {class_names[t][:14]}\npred {class_names[p][:14]} ({c:.0%})"
                for s, t, p, c in zip(wrong.sample_id, wrong.y_true, wrong.y_pred, wrong.confidence, strict=True)]
    return image_grid_png(pictures, captions)


def duplicates_gallery(duplicates: pd.DataFrame, images: RunImages, clusters: int = 8, per_cluster: int = 3) -> str | None:
    """Thumbnails of the first duplicate clusters (duplicates.csv), one row per cluster, captioned with file and label."""
    shown = duplicates[duplicates.sample_id.astype(str).isin(images.index)]
    shown = shown[shown.cluster.isin(sorted(shown.cluster.unique())[:clusters])].groupby("cluster").head(per_cluster)
    if shown.empty:
        return None
    pictures = [images.pixels[images.index[str(s)]].numpy() for s in shown.sample_id]
    captions = [f"cluster {c}\n{_short(Path(str(s)).name)}\n{str(label)[:14]}"
                for c, s, label in zip(shown.cluster, shown.sample_id, shown.label, strict=True)]
    return image_grid_png(pictures, captions, columns=per_cluster * 2)


def _short(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 9] + "…" + text[-8:]


def insight_fold(results: pd.DataFrame, arm: str) -> tuple[int, int, str]:
    """(repeat, fold, why): the arm's best-scoring cell among those that trained (status ok, no flag)."""
    cells = results[results["arm"] == arm]
    flag = cells["training_flag"].fillna("").astype(str) if "training_flag" in cells else pd.Series("", index=cells.index)
    good = cells[(cells["status"] == "ok") & (flag == "")]
    pool, why = (good, "its best-scoring fold among those that trained") if len(good) else (
        cells, "no fold of this arm trained properly (see the warnings); its best-scoring fold is shown anyway")
    best = pool.sort_values(["accuracy", "repeat", "fold"], ascending=[False, True, True]).iloc[0]
    return int(best["repeat"]), int(best["fold"]), f"repeat {int(best['repeat'])} fold {int(best['fold'])}: {why}"


def cam_layer(model: Any, x: torch.Tensor, min_size: int = 7) -> tuple[Any, str]:
    """The deepest stage whose feature map is at least ``min_size`` x ``min_size`` (Grad-CAM on a 2x2 map
    is blobs); ``(None, why not)`` when none is."""
    stages = [(n, getattr(model, n)) for n in ("layer1", "layer2", "layer3", "layer4") if hasattr(model, n)]
    if not stages:  # e.g. backbone: timm/convnext_atto
        return None, f"Grad-CAM not shown: {type(model).__name__} has no ResNet stages (layer1-layer4) to attribute on"
    shapes: dict[str, tuple[int, int]] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: shapes.__setitem__(n, tuple(o.shape[-2:]))) for n, m in stages]
    with torch.no_grad():
        model(x[:1])
    for hook in hooks:
        hook.remove()
    fit = [(n, m) for n, m in stages if min(shapes.get(n, (0, 0))) >= min_size]
    if not fit:
        sizes = ", ".join(f"{n} {h}x{w}" for n, (h, w) in shapes.items())
        return None, (f"Grad-CAM not shown: every stage's feature map is below {min_size}x{min_size} at this image "
                      f"size ({sizes}); a larger dataset.image_size would allow it")
    name, layer = fit[-1]
    h, w = shapes[name]
    return layer, f"Grad-CAM on {name} ({h}x{w} feature map: the deepest stage of at least {min_size}x{min_size})"


def _fold_model(run_dir: Path, arm_spec: dict[str, Any], registry: Any, classes: int, channels: int, size: int,
                cell: str = "r0-f0"):  # type: ignore[no-untyped-def]
    from harness.models.build import build_model
    from harness.models.weights import safe_torch_load

    attention = dict(arm_spec["attention"])
    model = build_model(registry, arm_spec["backbone"], attention.pop("name"), attention, num_classes=classes,
                        in_chans=channels, image_size=size)
    state = safe_torch_load(RunDir(run_dir).cell_at(arm_spec["_name"], cell).best)
    assert isinstance(state, dict)
    model.load_state_dict(state)
    return model.eval()


def _normalized(pixels: torch.Tensor, train: torch.Tensor, pretrained: bool) -> torch.Tensor:
    from harness.data.prepared import normalization

    mean, std = normalization(train, pixels.shape[1], pretrained)
    return (pixels.float() / 255 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def attention_insight(run_dir: Path, arm_name: str, arm_spec: dict[str, Any], registry: Any, images: RunImages,
                      predictions: pd.DataFrame, splits: pd.DataFrame, class_names: list[str], size: int,
                      results: pd.DataFrame | None = None) -> dict[str, Any]:
    """Excitation plot (SE arms) and Grad-CAM overlays for the best model of a fold that trained
    (Grad-CAM needs captum, the ``gradcam`` extra; without it the report says how to install it)."""
    spec = dict(arm_spec, _name=arm_name)
    repeat, fold_no, why = insight_fold(results, arm_name) if results is not None else (0, 0, "repeat 0 fold 0")
    model = _fold_model(run_dir, spec, registry, len(class_names), images.pixels.shape[1], size,
                        f"r{repeat}-f{fold_no}")
    fold = splits[(splits.repeat == repeat) & (splits.fold == fold_no)]
    train_idx = torch.tensor([images.index[s] for s in fold[fold.role == "train"].sample_id if s in images.index])
    val = predictions[(predictions.arm == arm_name) & (predictions.role == "val") & (predictions.repeat == repeat)
                      & (predictions.fold == fold_no) & predictions.sample_id.isin(images.index)]
    val_idx = torch.tensor([images.index[s] for s in val.sample_id])
    x = _normalized(images.pixels[val_idx], images.pixels[train_idx], bool(arm_spec.get("pretrained")))
    out: dict[str, Any] = {"fold": why}
    gates = [(f"{n}.{tag.gate}", m.get_submodule(tag.gate)) for n, m, tag in attention_modules(model) if tag.gate]
    if gates:
        chosen = [gates[0], gates[len(gates) // 2], gates[-1]] if len(gates) >= 3 else gates
        captured: dict[str, torch.Tensor] = {}
        hooks = [g.register_forward_hook(lambda _m, _i, o, n=n: captured.__setitem__(n, o.detach())) for n, g in chosen]
        with torch.no_grad():
            model(x)
        for hook in hooks:
            hook.remove()
        labels = val.y_true.to_numpy()
        excitations = {n: np.stack([captured[n][labels == c].mean(0).numpy() if (labels == c).any()
                                    else np.zeros(captured[n].shape[1]) for c in range(len(class_names))])
                       for n, _ in chosen}
        out["excitation"] = excitation_png(excitations, class_names)
        out["activity"] = gate_activity({n: captured[n] for n, _ in chosen})
        out["gates"] = gate_statistics({n: captured[n] for n, _ in chosen})
    target_layer, out["gradcam_note"] = cam_layer(model, x) if len(val) else (None, "Grad-CAM not shown: no validation images")
    try:
        captum = optional_import("captum.attr", "gradcam", "Grad-CAM")
    except MissingExtra as exc:
        target_layer, out["gradcam_note"] = None, f"Grad-CAM not shown: {exc}"
    if target_layer is not None and len(val):
        picks = []
        for c in range(len(class_names)):
            rows = val[val.y_true == c]
            picks += list(rows.index[rows.y_true == rows.y_pred][:1]) + list(rows.index[rows.y_true != rows.y_pred][:1])
        positions = [int(val.index.get_loc(p)) for p in picks][:MAX_GALLERY]  # type: ignore[arg-type]
        inputs = x[positions].requires_grad_(True)
        targets = torch.tensor(val.y_pred.to_numpy()[positions])
        cam = captum.LayerGradCam(model, target_layer).attribute(inputs, target=targets, relu_attributions=True)
        heat = captum.LayerAttribution.interpolate(cam, (size, size), interpolate_mode="bilinear").detach()[:, 0].numpy()
        heat = heat / np.maximum(heat.reshape(len(heat), -1).max(1), 1e-8)[:, None, None]
        captions = [f"{'ok' if t == p else 'wrong'}: true {class_names[t][:12]}\npred {class_names[p][:12]}"
                    for t, p in zip(val.y_true.to_numpy()[positions], val.y_pred.to_numpy()[positions], strict=True)]
        out["gradcam"] = image_grid_png([images.pixels[val_idx[i]].numpy() for i in positions], captions, list(heat))
    return out


INACTIVE_SD = 0.02  # fixed before looking at any run: gates this flat act as a constant channel scale


def gate_activity(gates: dict[str, torch.Tensor]) -> str:
    """Whether the SE gates respond to the image: the spread (sd across images, mean over channels) per block;
    "attention inactive" when every block's spread is below INACTIVE_SD."""
    spreads = {name: stats["sd_images"] for name, stats in gate_statistics(gates).items()}
    listed = ", ".join(f"{n} {v:.3f}" for n, v in spreads.items())
    if spreads and max(spreads.values()) < INACTIVE_SD:
        return (f"attention inactive: the SE gates barely vary between images (sd across images {listed}; "
                f"all below {INACTIVE_SD}), so they act as a fixed per-channel scale, not as attention")
    return f"gates vary between images (sd across images, mean over channels: {listed})"


NEAR_HALF = 0.05  # fixed before looking at any run: gates within 0.5 +- this on average scale every channel alike


def gate_statistics(gates: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Per SE block: the mean gate, the mean distance of a gate from 0.5, and the spread between images (sd across
    images, mean over channels)."""
    stats = {}
    for name, gate in gates.items():
        flat = gate.reshape(len(gate), -1).double()
        stats[name] = {"mean": float(flat.mean()), "from_half": float((flat - 0.5).abs().mean()),
                       "sd_images": float(flat.std(0).mean()) if len(flat) > 1 else 0.0}
    return stats


def flat_gates_sentence(arm: str, stats: dict[str, dict[str, float]]) -> str | None:
    """The verdict-side sentence when the SE gates did not act as attention: every block's gates stayed within
    NEAR_HALF of 0.5 on average, or none varied between images (sd below INACTIVE_SD); None otherwise."""
    if not stats:
        return None
    from_half = max(s["from_half"] for s in stats.values())
    spread = max(s["sd_images"] for s in stats.values())
    if from_half < NEAR_HALF:
        return (f"{arm}: SE gates stayed near 0.5 (mean distance from 0.5 at most {from_half:.3f} in every block shown, "
                f"below {NEAR_HALF}): SE did not act as attention here.")
    if spread < INACTIVE_SD:
        return (f"{arm}: SE gates did not vary between images (sd across images at most {spread:.3f}, below "
                f"{INACTIVE_SD}): SE acted as a fixed per-channel scale, not as attention here.")
    return None


def compute_insight(run_dir: Path, registry: Any) -> dict[str, Any]:
    """What the report shows of the trained models (at most six arms): the misclassified gallery, SE gate statistics
    and excitations, Grad-CAM. A failure is a warning in the result, never a lost run or report."""

    from harness.study.loader import load_study

    insight: dict[str, Any] = {"gallery": {}, "arms": {}, "warnings": []}
    try:
        run = RunDir(run_dir)
        study_dict = run.study()
        study = load_study(run.path_of(files.STUDY), (), registry.defaults)
        run_info = run.run_info()
        study_dir = Path(run_info["study_dir"]) if run_info.get("study_dir") else None
        images = load_run_images(run_dir, study, registry, study_dir)
        class_names = _stored(run.path_of(files.CLASSES), run.classes() if run.has(files.CLASSES) else None)
        predictions = _stored(run.path_of(files.PREDICTIONS), run.predictions())
        splits = _stored(run.path_of(files.SPLITS), run.splits(keep_default_na=False))
        results = _stored(run.path_of(files.RESULTS), run.raw_results())
        groups = dict(zip(splits.sample_id.astype(str), splits.group.astype(str), strict=True))
        duplicates = run.duplicates()
        if duplicates is not None:
            insight["duplicates"] = duplicates_gallery(duplicates, images)
        for arm in list(dict.fromkeys(results["arm"].astype(str)))[:6]:
            gallery = misclassified_gallery(predictions, images, class_names, arm, groups)
            if gallery:
                insight["gallery"][arm] = gallery
            if run.has_checkpoints(arm):
                insight["arms"][arm] = attention_insight(run_dir, arm, study_dict["arms"][arm], registry, images,
                                                         predictions, splits, class_names,
                                                         study.spec.dataset.image_size, results)
    except Exception as exc:  # the numbers are the report; pictures are a bonus
        insight["warnings"].append(f"attention insight and gallery skipped: {type(exc).__name__}: {exc}")
    return insight


def _stored(path: Path, value: Any) -> Any:
    """A record the insight needs: missing is the same error as opening the file (caught and shown as a warning)."""
    if value is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))
    return value


def write_insight(run_dir: Path, registry: Any) -> dict[str, Any]:
    """Compute the insight data and store it in the run directory (``insight.json``, atomically)."""
    insight = compute_insight(run_dir, registry)
    RunDir(run_dir).write_insight(insight)
    return insight


def read_insight(run_dir: Path) -> dict[str, Any] | None:
    """The stored insight.json; None when the run has none (made with --no-report, or by an older version)."""
    return RunDir(run_dir).insight()


def flat_gate_sentences(insight: dict[str, Any] | None) -> list[str]:
    """The stored insight's flat-gate sentences, one per SE arm whose gates did not act as attention."""
    arms = (insight or {}).get("arms", {})
    return [text for arm, parts in arms.items() if (text := flat_gates_sentence(arm, parts.get("gates") or {}))]
