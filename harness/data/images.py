"""Image tables, and decoding every image exactly once per study into a compact uint8 cache."""

from __future__ import annotations

import hashlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness.atomic import atomic_write, atomic_write_bytes
from harness.data.duplicates import THUMB, image_fingerprints
from harness.errors import HarnessError

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
MAX_LISTED = 20


@dataclass(frozen=True)
class ImageTable:
    """What a dataset plugin returns: one row per sample.

    ``columns`` holds every other per-sample column by name (patient ids, official split, ...),
    so ``cv.group`` can name any of them. ``notes`` lists every guess the loader made.
    """

    paths: list[Path]
    labels: np.ndarray
    class_names: list[str]
    sample_ids: list[str]
    columns: pd.DataFrame = field(default_factory=pd.DataFrame)
    official_test: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    rows: list[int] | None = None  # source line per sample in the dataset file, for messages
    group_column: str | None = None  # the grouping the dataset declares (used when cv.group is unset)
    clusters: np.ndarray | None = None  # duplicate-image cluster per sample (-1: none), grouped with cv.group

    def __post_init__(self) -> None:
        n = len(self.paths)
        if n == 0:
            raise HarnessError("the dataset has no samples")
        if len(self.labels) != n or len(self.sample_ids) != n:
            raise HarnessError("dataset plugin bug: paths, labels and sample_ids differ in length")
        duplicated = pd.Series([str(p) for p in self.paths]).duplicated(keep=False)
        if duplicated.any():
            dupes = sorted({str(p) for p, d in zip(self.paths, duplicated, strict=True) if d})
            raise HarnessError(
                f"{len(dupes)} image paths appear more than once (e.g. {dupes[0]}); each image "
                "must be one sample, or its folds would leak into each other"
            )

    def subset(self, keep: np.ndarray) -> ImageTable:
        idx = np.flatnonzero(keep)
        return ImageTable(
            paths=[self.paths[i] for i in idx],
            labels=self.labels[idx],
            class_names=self.class_names,
            sample_ids=[self.sample_ids[i] for i in idx],
            columns=self.columns.iloc[idx].reset_index(drop=True),
            official_test=None if self.official_test is None else self.official_test[idx],
            notes=self.notes,
            rows=None if self.rows is None else [self.rows[i] for i in idx],
            group_column=self.group_column,
            clusters=None if self.clusters is None else self.clusters[idx],
        )


@dataclass(frozen=True)
class DecodedImages:
    """All images as one ``(N, C, S, S)`` uint8 tensor; ``C`` is 1 when every image is grayscale."""

    pixels: torch.Tensor
    bad: list[tuple[int, str]]  # (sample index, reason)
    exact: list[str] = field(default_factory=list)  # per image: hash of its full-size decoded pixels ("" unreadable)
    phash: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))  # per image: 64-bit pHash
    thumbs: np.ndarray = field(default_factory=lambda: np.zeros((0, THUMB * THUMB), dtype=np.uint8))  # 32x32 gray

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[1])

    def subset(self, keep: np.ndarray) -> DecodedImages:
        """The kept images (boolean mask), their fingerprints with them; ``bad`` is cleared."""
        idx = np.flatnonzero(keep)
        exact = [self.exact[i] for i in idx] if self.exact else []
        phash = self.phash[idx] if len(self.phash) else self.phash
        thumbs = self.thumbs[idx] if len(self.thumbs) else self.thumbs
        return DecodedImages(self.pixels[torch.from_numpy(np.asarray(keep, dtype=bool))], [], exact, phash, thumbs)


def _normalized(image: object) -> Any:
    """The image as 8-bit L (grayscale modes; 16-bit and float scaled) or RGB."""
    from PIL import Image

    assert isinstance(image, Image.Image)
    if image.mode in {"I", "I;16", "I;16B", "I;16L", "F"}:
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), mode="L")
    return image.convert("L") if image.mode in GRAY_MODES else image.convert("RGB")


def _to_array(image: Any, size: int) -> np.ndarray:
    from PIL import Image

    image = image.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _decode_one(path: Path, size: int) -> tuple[np.ndarray, str, int, np.ndarray] | str:
    """(resized pixels, exact hash, perceptual hash, thumbnail), or why the file cannot be read."""
    from stat import S_ISREG

    from PIL import Image, UnidentifiedImageError

    try:
        info = path.stat()
        if not S_ISREG(info.st_mode):
            return "not a regular file (a FIFO, device or folder)"
        if info.st_size == 0:
            return "zero-byte file"
        with Image.open(path) as image:
            image.load()
            normalized = _normalized(image)
            return (_to_array(normalized, size), *image_fingerprints(normalized))
    except FileNotFoundError:
        return "file not found"
    except Image.DecompressionBombError as exc:  # not an OSError: it would escape on_bad_image: skip
        return f"refused: too many pixels for an image ({exc})"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        return f"unreadable image ({type(exc).__name__}: {exc})"


def _file_digest(path: Path) -> str:
    """The content hash of a regular file; a FIFO or device is never opened (it could block or never end)."""
    from stat import S_ISREG

    try:
        if not S_ISREG(path.stat().st_mode):
            return "not-a-regular-file"
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "blake2b").hexdigest()
    except OSError:
        return "missing"


def cache_key(paths: list[Path], size: int) -> str:
    """A key from the size and every file's path and bytes (BLAKE2b): a file replaced under the same name,
    size and time stamp (``cp -p``, ``rsync -t``) changes it, so its cache is rebuilt."""
    with ThreadPoolExecutor(max_workers=_workers()) as pool:  # hashlib releases the GIL on large buffers
        digests = list(pool.map(_file_digest, paths))
    digest = hashlib.sha256(f"v2|{size}".encode())
    for path, content in zip(paths, digests, strict=True):
        digest.update(f"{path}|{content}\n".encode())
    return digest.hexdigest()[:16]


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _thumbs_path(stem: Path) -> Path:
    return stem.with_suffix(".thumbs")  # a .npy by content; not named *.npy so decoded-*.npy lists the pixel caches


def _load_cache(stem: Path, n: int, size: int) -> DecodedImages | None:
    """The cached images, or None (with a warning) when the cache files are damaged or do not fit."""
    import json

    try:
        meta = json.loads(stem.with_suffix(".json").read_text())
        large = stem.with_suffix(".npy").stat().st_size > MEMMAP_BYTES
        pixels = np.load(stem.with_suffix(".npy"), mmap_mode="c" if large else None)
        bad = [(int(i), str(r)) for i, r in meta["bad"]]
        exact = [str(e) for e in meta["exact"]]
        phash = np.array([int(h, 16) for h in meta["phash"]], dtype=np.uint64)
        thumbs = np.load(_thumbs_path(stem))
        if pixels.dtype != np.uint8 or pixels.shape[0] != n or pixels.shape[2:] != (size, size) \
                or len(exact) != n or len(phash) != n or thumbs.shape != (n, THUMB * THUMB):
            raise ValueError(f"holds {pixels.shape} {pixels.dtype} for {n} images of {size} px")
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        warnings.warn(f"decode cache {stem.with_suffix('.npy')} is damaged ({type(exc).__name__}: {exc}); "
                      "decoding the images again", stacklevel=3)
        return None
    return DecodedImages(torch.from_numpy(pixels), bad, exact, phash, thumbs)


MEMMAP_BYTES = 2 * 1024**3  # larger decoded sets stay on disk, memory-mapped


def decode_images(paths: list[Path], size: int, cache_dir: Path | None = None) -> DecodedImages:
    """Decode and resize every image once (threads), reusing an on-disk uint8 cache when it matches.

    The cache is a ``.npy`` under the run directory; sets over 2 GiB are memory-mapped, not loaded.
    """
    import json

    stem = cache_dir / f"decoded-{size}-{cache_key(paths, size)}" if cache_dir else None
    if stem is not None and stem.with_suffix(".json").exists() and stem.with_suffix(".npy").exists():
        cached = _load_cache(stem, len(paths), size)
        if cached is not None:
            return cached
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        decoded = list(pool.map(lambda p: _decode_one(p, size), paths))
    bad = [(i, d) for i, d in enumerate(decoded) if isinstance(d, str)]
    arrays = [d[0] for d in decoded if not isinstance(d, str)]
    channels = 1 if arrays and all(a.shape[0] == 1 for a in arrays) else 3
    pixels = np.zeros((len(paths), channels, size, size), dtype=np.uint8)
    exact, phash = [""] * len(paths), np.zeros(len(paths), dtype=np.uint64)
    thumbs = np.zeros((len(paths), THUMB * THUMB), dtype=np.uint8)
    for index, item in enumerate(decoded):
        if not isinstance(item, str):
            array, exact[index], phash[index], thumbs[index] = item
            pixels[index] = np.repeat(array, channels, axis=0) if array.shape[0] != channels else array
    if stem is not None:
        meta = {"bad": bad, "exact": exact, "phash": [f"{int(h):016x}" for h in phash]}
        atomic_write(stem.with_suffix(".npy"), lambda f: np.save(f, pixels))
        atomic_write(_thumbs_path(stem), lambda f: np.save(f, thumbs))
        atomic_write_bytes(stem.with_suffix(".json"), json.dumps(meta).encode())  # written last: cache complete
    return DecodedImages(torch.from_numpy(pixels), bad, exact, phash, thumbs)


def describe_bad(table: ImageTable, bad: list[tuple[int, str]]) -> str:
    lines = []
    for index, reason in bad[:MAX_LISTED]:
        row = f"row {table.rows[index]}: " if table.rows else ""
        lines.append(f"  {row}{table.paths[index]}: {reason}")
    if len(bad) > MAX_LISTED:
        lines.append(f"  ... and {len(bad) - MAX_LISTED} more")
    return "\n".join(lines)
