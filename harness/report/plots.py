"""Matplotlib figures for the report, returned as base64 PNG so the HTML stays one self-contained file."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_png(fig) -> str:  # type: ignore[no-untyped-def]
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def arm_curves_png(histories: Mapping[str, Sequence[pd.DataFrame]], metric: str) -> str:
    """One metric, every arm on one plot (the arms are what is compared): validation mean ± sd over
    folds (solid, band), training mean (dashed) and, when declared, the inner selection split
    (dash-dot), one colour per arm."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.2), dpi=80)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (arm, frames) in enumerate(histories.items()):
        color = colors[index % len(colors)]
        for split, style in (("val", "-"), ("train", "--"), ("inner", "-.")):
            if not all(f"{split}_{metric}" in h for h in frames):  # the inner split exists only when declared
                continue
            frame = pd.concat([h.set_index("epoch")[f"{split}_{metric}"] for h in frames], axis=1)
            mean = frame.mean(axis=1)
            ax.plot(mean.index, mean, color=color, linestyle=style, linewidth=2 if split == "val" else 1,
                    label=f"{arm} ({ {'val': 'validation', 'train': 'training', 'inner': 'inner selection'}[split]})")
            if split == "val":
                sd = frame.std(axis=1).fillna(0)
                ax.fill_between(mean.index, mean - sd, mean + sd, color=color, alpha=0.15)
    ax.set(title=f"{metric}: every arm (mean over folds; band ± sd)", xlabel="epoch", ylabel=metric)
    if metric == "loss":  # log scale: one unstable epoch must not flatten the rest; and the schedule per arm
        if all((h[f"{split}_loss"] > 0).all() for frames in histories.values() for h in frames
               for split in ("train", "val")):
            ax.set_yscale("log")
            ax.set_ylabel("loss (log scale)")
        lr_axis = ax.twinx()
        for index, frames in enumerate(histories.values()):
            lr_axis.step(frames[0]["epoch"], frames[0]["lr"], where="post", color=colors[index % len(colors)],
                         linestyle=":", linewidth=1)
        lr_axis.set_ylabel("learning rate (dotted)", color="gray")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.16 if metric == "loss" else 1.01, 1.0))
    fig.tight_layout()
    return to_png(fig)


def image_grid_png(images: Sequence[np.ndarray], captions: Sequence[str], overlays: Sequence[np.ndarray] | None = None,
                   columns: int = 6) -> str:
    """Thumbnails (uint8, C x H x W) with captions, optionally with a heat map overlaid."""
    plt = _pyplot()
    rows = max(1, int(np.ceil(len(images) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.5 * rows), dpi=80, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for index, (image, caption) in enumerate(zip(images, captions, strict=True)):
        ax = axes.flat[index]
        picture = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        ax.imshow(picture, cmap="gray" if image.shape[0] == 1 else None)
        if overlays is not None:
            ax.imshow(overlays[index], cmap="jet", alpha=0.4)
        ax.set_title(caption, fontsize=7)
    fig.tight_layout()
    return to_png(fig)


def excitation_png(excitations: dict[str, np.ndarray], class_names: Sequence[str]) -> str:
    """Mean SE excitation per channel for each class at a few depths (SE paper, Fig. 6 style)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(excitations), figsize=(4 * len(excitations), 2.8), dpi=80, squeeze=False)
    for ax, (name, values) in zip(axes[0], excitations.items(), strict=True):
        for row, label in zip(values, class_names, strict=True):
            ax.plot(np.arange(len(row)), row, linewidth=1, label=str(label))
        ax.set(title=name, xlabel="channel index", ylabel="mean activation", ylim=(0, 1.05))
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)
