"""A synthetic B-mode ultrasound generator: fan-shaped field of view, speckle, depth attenuation,
class-specific fetal anatomy and per-patient variation. Deterministic by seed; grayscale.

Written to disk as PNGs plus a ``labels.csv`` so the study reads it through the ``csv`` loader,
exercising the same decode path as real data.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ANATOMIES = ("head", "abdomen", "femur", "thorax")
VERSION = 2  # bump when the generator changes, so cached images are regenerated


def _ring(d: np.ndarray, radius: float, width: float) -> np.ndarray:
    return np.exp(-(((d - radius) / width) ** 2))


def _head(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, s: float, rot: float, rng: np.random.Generator) -> np.ndarray:
    c, sn = np.cos(rot), np.sin(rot)
    u = ((xx - cx) * c + (yy - cy) * sn) / (0.30 * s)
    v = (-(xx - cx) * sn + (yy - cy) * c) / (0.23 * s)
    d = np.sqrt(u**2 + v**2)
    skull = 1.2 * _ring(d, 1.0, 0.09)
    midline = 0.8 * np.exp(-((v / 0.05) ** 2)) * (d < 0.85)
    return skull + midline - 0.25 * (d < 0.95)


def _abdomen(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, s: float, rot: float, rng: np.random.Generator) -> np.ndarray:
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / (0.26 * s)
    by, bx = cy + 0.08 * s * np.sin(rot), cx + 0.1 * s * np.cos(rot)
    bubble = np.sqrt(((xx - bx) / 0.8) ** 2 + (yy - by) ** 2) / (0.08 * s)
    return 0.6 * _ring(d, 1.0, 0.08) + 0.15 * (d < 1) - 0.7 * (bubble < 1)


def _femur(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, s: float, rot: float, rng: np.random.Generator) -> np.ndarray:
    angle = 0.35 * np.tanh(rot)
    c, sn = np.cos(angle), np.sin(angle)
    along = (xx - cx) * c + (yy - cy) * sn
    across = -(xx - cx) * sn + (yy - cy) * c
    bone = (np.abs(along) < 0.25 * s) * np.exp(-((across / (0.025 * s)) ** 2))
    shadow = (np.abs(along) < 0.25 * s) * (across > 0.02 * s)
    return 1.5 * bone - 0.35 * shadow


def _thorax(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, s: float, rot: float, rng: np.random.Generator) -> np.ndarray:
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / (0.27 * s)
    hy, hx = cy + 0.05 * s * np.cos(rot), cx - 0.06 * s
    heart = np.sqrt((xx - hx) ** 2 + (yy - hy) ** 2) / (0.11 * s)
    septa = (np.abs(xx - hx) < 0.012) | (np.abs(yy - hy) < 0.012)
    ribs = 0.5 * _ring(d, 1.0, 0.05) * (np.sin(8 * np.arctan2(yy - cy, xx - cx)) > 0.3)
    return ribs + 1.0 * (heart < 1) - 0.9 * ((heart < 1) & septa)


DRAW: dict[str, Callable[..., np.ndarray]] = {
    "head": _head, "abdomen": _abdomen, "femur": _femur, "thorax": _thorax,
}


def render(anatomy: str, size: int, difficulty: float, patient: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """One grayscale uint8 B-mode image of ``anatomy``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    apex_y, apex_x = -0.08, 0.5
    radius = np.sqrt((yy - apex_y) ** 2 + (xx - apex_x) ** 2)
    theta = np.arctan2(xx - apex_x, yy - apex_y)
    fan = (np.abs(theta) < np.deg2rad(patient["fan_deg"])) & (radius > 0.15) & (radius < 1.05)
    jitter = 0.04 + 0.08 * difficulty
    cy = 0.55 + patient["dy"] + rng.normal(0, jitter)
    cx = 0.5 + patient["dx"] + rng.normal(0, jitter)
    scale = patient["scale"] * (1 + rng.normal(0, 0.05 + 0.1 * difficulty))
    rot = rng.uniform(-np.pi, np.pi)
    tissue = 0.35 + 0.1 * np.sin(6 * xx + patient["phase"]) * np.cos(5 * yy)
    contrast = 1.0 - 0.6 * difficulty
    echo = tissue + contrast * 0.5 * DRAW[anatomy](yy, xx, cy, cx, scale, rot, rng)
    attenuation = np.exp(-patient["attenuation"] * np.clip(radius - 0.15, 0, None))
    speckle = rng.rayleigh(scale=np.sqrt(2 / np.pi), size=echo.shape) ** (0.6 + 0.8 * difficulty)
    image = np.clip(echo, 0.02, None) * attenuation * speckle * patient["gain"] * fan
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def generate(out_dir: Path, *, classes: int, per_class: int, patients: int, difficulty: float, size: int, seed: int) -> Path:
    """Write the phantom dataset to ``out_dir`` (once: later calls reuse it); return its CSV."""
    params = dict(classes=classes, per_class=per_class, patients=patients, difficulty=difficulty, size=size, seed=seed, version=VERSION)
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = out_dir / ("phantom-" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12])
    csv_path = folder / "labels.csv"
    if csv_path.exists():
        return csv_path
    # Build in a private folder and rename it into place: concurrent workers never see half a dataset.
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=out_dir))
    try:
        _write(staging, classes=classes, per_class=per_class, patients=patients, difficulty=difficulty, size=size,
               seed=seed, params=params)
    except BaseException as exc:  # a full disk, Ctrl-C: never leave a staging folder that keeps the disk full
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            from harness.api import HarnessError

            raise HarnessError(f"disk full while writing the phantom dataset under {out_dir}; the partial copy was "
                               "removed: free some space (or use a smaller per_class/size) and rerun") from None
        raise
    try:
        os.rename(staging, folder)
    except OSError:  # another process finished the same dataset first: use theirs
        shutil.rmtree(staging, ignore_errors=True)
    return csv_path


def _write(staging: Path, *, classes: int, per_class: int, patients: int, difficulty: float, size: int, seed: int,
           params: dict[str, object]) -> None:
    """The images, labels.csv and params.json of one phantom dataset, into ``staging``."""
    from PIL import Image

    (staging / "images").mkdir()
    rng = np.random.default_rng(seed)
    people = [
        dict(dy=rng.normal(0, 0.04), dx=rng.normal(0, 0.04), scale=rng.uniform(0.85, 1.15),
             gain=rng.uniform(0.8, 1.2), attenuation=rng.uniform(0.8, 1.8), phase=rng.uniform(0, 6.28),
             fan_deg=rng.uniform(30, 40))
        for _ in range(patients)
    ]
    rows = ["image_path,label,patient"]
    for label in ANATOMIES[:classes]:
        for index in range(per_class):
            patient = int(rng.integers(patients))
            image = render(label, size, difficulty, people[patient], rng)
            name = f"images/{label}_{index:05d}.png"
            Image.fromarray(image, mode="L").save(staging / name)
            rows.append(f"{name},{label},P{patient:04d}")
    (staging / "params.json").write_text(json.dumps(params, indent=2))
    (staging / "labels.csv").write_text("\n".join(rows) + "\n")
