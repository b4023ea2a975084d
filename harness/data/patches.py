"""``harness prepare patches``: tile source images into patches, drop mostly-white ones, and split
off a test set by source image (patches of one image never straddle train and test)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from harness.atomic import atomic_write_text
from harness.errors import HarnessError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class PatchSummary:
    sources: int
    test_sources: int
    kept: int
    discarded_white: int
    csv: str


def _sources(src: Path, pattern: str) -> list[tuple[Path, str]]:
    if not src.is_dir():
        raise HarnessError(f"{src} is not a folder of images")
    class_dirs = sorted(p for p in src.iterdir() if p.is_dir())
    if class_dirs:
        found = [(f, d.name) for d in class_dirs for f in sorted(d.rglob("*")) if f.suffix.lower() in EXTENSIONS]
    else:
        regex = re.compile(pattern)
        found = []
        for f in sorted(src.iterdir()):
            match = regex.search(f.name) if f.suffix.lower() in EXTENSIONS else None
            if match:
                found.append((f, match.group("label")))
    if not found:
        raise HarnessError(f"{src}: no images found (class sub-folders, or names matching {pattern!r})")
    return found


def _split_sources(labels: list[str], test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of test sources, stratified by label where every class can give one."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(labels), dtype=bool)
    if test_fraction <= 0:
        return is_test
    for label in sorted(set(labels)):
        members = np.flatnonzero(np.array(labels) == label)
        n_test = int(round(test_fraction * len(members)))
        if len(members) > 1:
            n_test = min(max(n_test, 1), len(members) - 1)
        is_test[rng.permutation(members)[:n_test]] = True
    return is_test


def make_patches(src: Path, dst: Path, *, size: int = 150, max_white: float = 0.5, white_level: int = 240,
                 test_fraction: float = 0.2, seed: int = 0, pattern: str = r"^(?P<label>[^_]+)_") -> PatchSummary:
    """Write ``dst/patches/<label>/*.png`` and ``dst/labels.csv`` (image_path,label,source,split)."""
    from PIL import Image

    if size < 1:
        raise HarnessError(f"--size must be at least 1 pixel (got {size}); patches are --size x --size")
    if not 0 <= test_fraction < 1:
        raise HarnessError("--test-fraction must be in [0, 1)")
    if not 0 <= max_white <= 1:
        raise HarnessError("--max-white must be in [0, 1]")
    sources = _sources(src, pattern)
    is_test = _split_sources([label for _, label in sources], test_fraction, seed)
    rows, kept, discarded = ["image_path,label,source,split"], 0, 0
    for (path, label), test in zip(sources, is_test, strict=True):
        try:
            with Image.open(path) as image:
                image.load()
                gray = np.asarray(image.convert("L"))
                pixels = image.convert("L" if image.mode in ("L", "I;16", "I", "1") else "RGB")
        except OSError as exc:
            raise HarnessError(f"{path}: unreadable image ({exc})") from None
        out_dir = dst / "patches" / label
        out_dir.mkdir(parents=True, exist_ok=True)
        for top in range(0, gray.shape[0] - size + 1, size):
            for left in range(0, gray.shape[1] - size + 1, size):
                white = float(np.mean(gray[top:top + size, left:left + size] >= white_level))
                if white > max_white:
                    discarded += 1
                    continue
                name = f"{path.stem}_r{top // size}_c{left // size}.png"
                pixels.crop((left, top, left + size, top + size)).save(out_dir / name)
                rows.append(f"patches/{label}/{name},{label},{path.stem},{'test' if test else 'train'}")
                kept += 1
    csv_path = dst / "labels.csv"
    atomic_write_text(csv_path, "\n".join(rows) + "\n")
    summary = PatchSummary(len(sources), int(is_test.sum()), kept, discarded, str(csv_path))
    atomic_write_text(dst / "prepare.json", json.dumps(asdict(summary), indent=1))
    return summary
