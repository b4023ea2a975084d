"""What the data looks like before anything trains: class and group counts, each fold's class
balance, and file names that look like frames of one source with no grouping declared."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

# "<source>_frame12", "<source>-slice_3", "<source> img7", or "<source>_12" (bare trailing number)
_FRAME = re.compile(r"^(?P<source>.+?)(?P<gap>[ _.\-]*(?:frames?|slices?|frm|img|image|f|s)?[ _.\-]*)\d+$", re.IGNORECASE)


def frame_sources(names: Sequence[str]) -> dict[str, str]:
    """File stem -> the source it looks like a frame/slice of (only stems that end in a number)."""
    out = {}
    for name in names:
        stem = re.sub(r"(\.[A-Za-z][A-Za-z0-9]{1,3})+$", "", name.replace("\\", "/").rsplit("/", 1)[-1])
        match = _FRAME.match(stem)
        # "1234" is a number, not frame 234 of source "1": a source ends in a letter or is set off
        if match and (match.group("gap") or not match.group("source")[-1].isdigit()):
            out[name] = match.group("source")
    return out


def frame_name_warning(names: Sequence[str], n_classes: int) -> str | None:
    """A warning when many file names look like numbered frames/slices of fewer sources.

    Frames of one video (or slices of one scan) in both training and validation inflate every score.
    Camera-style names (``IMG_0001``: one prefix) and one prefix per class are not flagged.
    """
    sources = frame_sources(names)
    if len(sources) < max(4, len(names) // 2):
        return None
    counts = Counter(sources.values())
    shared = sum(c for c in counts.values() if c > 1)
    if len(counts) <= max(1, n_classes) or shared < len(sources) // 2:
        return None
    example = next(n for n, s in sources.items() if counts[s] > 1)
    return (f"{len(sources)} of {len(names)} file names look like numbered frames/slices of {len(counts)} sources "
            f"(e.g. {example!r} -> {sources[example]!r}) but the folds are not grouped: frames of one source would "
            "sit in both training and validation and inflate the scores. Group them: dataset.options.group_pattern "
            r"(folder/filename, e.g. '^(.+?)_frame\d+') or cv.group (a column); to silence this, group by the "
            "file itself (group_pattern: '^(.*)$')")


def data_summary(labels: np.ndarray, class_names: Sequence[str], groups: np.ndarray | None,
                 folds: Sequence[Any], test: np.ndarray) -> dict[str, Any]:
    """Class counts, groups per class, and each fold's class counts (train / val), as plain data."""
    def counts(idx: np.ndarray) -> list[int]:
        return np.bincount(labels[idx], minlength=len(class_names)).astype(int).tolist()

    everything = np.arange(len(labels))
    summary: dict[str, Any] = {
        "classes": list(map(str, class_names)), "n": int(len(labels)), "class_counts": counts(everything),
        "majority_rate": float(np.bincount(labels).max() / len(labels)), "chance_rate": 1.0 / len(class_names),
        "groups": None, "groups_per_class": None, "test_counts": counts(test) if len(test) else None,
        "folds": [{"repeat": f.repeat, "fold": f.fold, "train": counts(f.train), "val": counts(f.val)} for f in folds],
    }
    if groups is not None:
        summary["groups"] = int(len(np.unique(groups)))
        summary["groups_per_class"] = [int(len(np.unique(groups[labels == c]))) for c in range(len(class_names))]
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as log lines."""
    names = summary["classes"]
    lines = ["classes: " + ", ".join(f"{n} {c}" for n, c in zip(names, summary["class_counts"], strict=True))
             + f" ({summary['n']} images; majority class {100 * summary['majority_rate']:.1f} %, "
             f"chance {100 * summary['chance_rate']:.1f} %)"]
    if summary["groups"] is not None:
        lines.append(f"groups: {summary['groups']}; per class: "
                     + ", ".join(f"{n} {g}" for n, g in zip(names, summary["groups_per_class"], strict=True)))
    else:
        lines.append("groups: none declared (every image is its own unit)")
    for f in summary["folds"]:
        lines.append(f"repeat {f['repeat']} fold {f['fold']}: train " + "/".join(map(str, f["train"]))
                     + ", val " + "/".join(map(str, f["val"])) + f" ({'/'.join(names)})")
    if summary["test_counts"]:
        lines.append("held-out test: " + "/".join(map(str, summary["test_counts"])))
    return lines
