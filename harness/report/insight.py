"""Looking inside trained models for the report: SE excitations per class, Grad-CAM (captum) and
the misclassified examples. Uses the stored best checkpoints and the decoded-image cache; no training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness.contracts import attention_modules
from harness.report.plots import excitation_png, image_grid_png

MAX_GALLERY = 12


@dataclass
class RunImages:
    """The run's decoded images and their sample ids, loaded through the dataset plugin (cache hit)."""

    pixels: torch.Tensor
    index: dict[str, int]


def load_run_images(run_dir: Path, study: Any, registry: Any, study_dir: Path | None = None) -> RunImages:
    from harness.data.images import decode_images
    from harness.data.prepared import load_table

    table = load_table(study, registry, run_dir / "cache", study_dir)
    decoded = decode_images(table.paths, study.spec.dataset.image_size, run_dir / "cache")
    return RunImages(decoded.pixels, {sid: i for i, sid in enumerate(table.sample_ids)})


def misclassified_gallery(predictions: pd.DataFrame, images: RunImages, class_names: list[str], arm: str) -> str | None:
    wrong = predictions[(predictions.arm == arm) & (predictions.role == "val") & (predictions.y_true != predictions.y_pred)]
    if wrong.empty:
        return None
    prob_columns = [f"p_{c}" for c in range(len(class_names))]
    wrong = wrong.assign(confidence=wrong[prob_columns].max(axis=1)).sort_values("confidence", ascending=False)
    wrong = wrong[wrong.sample_id.isin(images.index)].head(MAX_GALLERY)
    pictures = [images.pixels[images.index[s]].numpy() for s in wrong.sample_id]
    captions = [f"true {class_names[t][:14]}\npred {class_names[p][:14]} ({c:.0%})"
                for t, p, c in zip(wrong.y_true, wrong.y_pred, wrong.confidence, strict=True)]
    return image_grid_png(pictures, captions)


def _fold_model(run_dir: Path, arm_spec: dict[str, Any], registry: Any, classes: int, channels: int, size: int):  # type: ignore[no-untyped-def]
    from harness.models.build import build_model
    from harness.models.weights import safe_torch_load

    attention = dict(arm_spec["attention"])
    model = build_model(registry, arm_spec["backbone"], attention.pop("name"), attention, num_classes=classes,
                        in_chans=channels, image_size=size)
    state = safe_torch_load(run_dir / "cells" / arm_spec["_name"] / "r0-f0" / "best.pt")
    assert isinstance(state, dict)
    model.load_state_dict(state)
    return model.eval()


def _normalized(pixels: torch.Tensor, train: torch.Tensor, pretrained: bool) -> torch.Tensor:
    from harness.data.prepared import normalization

    mean, std = normalization(train, pixels.shape[1], pretrained)
    return (pixels.float() / 255 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def attention_insight(run_dir: Path, arm_name: str, arm_spec: dict[str, Any], registry: Any, images: RunImages,
                      predictions: pd.DataFrame, splits: pd.DataFrame, class_names: list[str], size: int) -> dict[str, str]:
    """Excitation plot (SE arms) and Grad-CAM overlays for fold 0's best model."""
    from captum.attr import LayerAttribution, LayerGradCam

    spec = dict(arm_spec, _name=arm_name)
    model = _fold_model(run_dir, spec, registry, len(class_names), images.pixels.shape[1], size)
    fold = splits[(splits.repeat == 0) & (splits.fold == 0)]
    train_idx = torch.tensor([images.index[s] for s in fold[fold.role == "train"].sample_id if s in images.index])
    val = predictions[(predictions.arm == arm_name) & (predictions.role == "val") & (predictions.repeat == 0)
                      & (predictions.fold == 0) & predictions.sample_id.isin(images.index)]
    val_idx = torch.tensor([images.index[s] for s in val.sample_id])
    x = _normalized(images.pixels[val_idx], images.pixels[train_idx], bool(arm_spec.get("pretrained")))
    out: dict[str, str] = {}
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
    target_layer = getattr(model, "layer4", None) or getattr(model, "layer3", None)
    if target_layer is not None and len(val):
        picks = []
        for c in range(len(class_names)):
            rows = val[val.y_true == c]
            picks += list(rows.index[rows.y_true == rows.y_pred][:1]) + list(rows.index[rows.y_true != rows.y_pred][:1])
        positions = [int(val.index.get_loc(p)) for p in picks][:MAX_GALLERY]  # type: ignore[arg-type]
        inputs = x[positions].requires_grad_(True)
        targets = torch.tensor(val.y_pred.to_numpy()[positions])
        cam = LayerGradCam(model, target_layer).attribute(inputs, target=targets, relu_attributions=True)
        heat = LayerAttribution.interpolate(cam, (size, size), interpolate_mode="bilinear").detach()[:, 0].numpy()
        heat = heat / np.maximum(heat.reshape(len(heat), -1).max(1), 1e-8)[:, None, None]
        captions = [f"{'ok' if t == p else 'wrong'}: true {class_names[t][:12]}\npred {class_names[p][:12]}"
                    for t, p in zip(val.y_true.to_numpy()[positions], val.y_pred.to_numpy()[positions], strict=True)]
        out["gradcam"] = image_grid_png([images.pixels[val_idx[i]].numpy() for i in positions], captions, list(heat))
    return out
