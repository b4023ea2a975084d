"""Exact and near-duplicate images, found before training so they cannot leak across folds.

Each image gets two fingerprints while it is decoded (once, cached with the decoded pixels):

* **exact**: a BLAKE2b hash of its decoded pixels at full resolution, before any resizing (mode
  normalised to 8-bit L or RGB), so a byte copy or a lossless re-save under another name matches;
* **near**: a 64-bit DCT perceptual hash (pHash, the ``imagehash`` algorithm: 32 x 32 grayscale, the
  8 x 8 lowest frequencies against their median). Two images are near duplicates when their hashes
  differ in at most ``near_threshold`` bits; re-encoded, resized, brightness-shifted and slightly
  cropped copies stay within a few bits.

Duplicates are joined into clusters (union-find); clusters are merged with the declared groups
(``cv.group``) so a cluster never straddles training and validation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

HASH_SIZE = 8  # 8 x 8 DCT coefficients: 64 bits
THUMB = 4 * HASH_SIZE  # the 32 x 32 grayscale thumbnail the hash is computed from


def image_fingerprints(image: Any) -> tuple[str, int, np.ndarray]:
    """(exact hash, perceptual hash, 32 x 32 grayscale thumbnail) of a PIL image in mode L or RGB."""
    from PIL import Image
    from scipy.fft import dctn

    exact = hashlib.blake2b(f"{image.mode}|{image.size}|".encode(), digest_size=16)
    exact.update(image.tobytes())
    small = np.asarray(image.convert("L").resize((THUMB, THUMB), Image.Resampling.LANCZOS), dtype=np.uint8)
    low = dctn(small.astype(np.float64), norm="ortho")[:HASH_SIZE, :HASH_SIZE]
    bits = (low > np.median(low)).ravel()
    return exact.hexdigest(), int(np.packbits(bits).view(">u8")[0]), small.ravel()


def _standardized(thumbs: np.ndarray) -> np.ndarray:
    x = thumbs.astype(np.float32)
    x -= x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = int(self.parent[root])
        while self.parent[i] != root:
            self.parent[i], i = root, int(self.parent[i])
        return root

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))])


@dataclass(frozen=True)
class Duplicates:
    """Clusters of duplicate images: ``cluster[i]`` is sample i's cluster id, or -1 when it has no duplicate."""

    cluster: np.ndarray
    exact_pairs: int  # pairs joined by identical pixels
    near_pairs: int  # further pairs joined by the perceptual hash

    @property
    def n_clusters(self) -> int:
        return int(self.cluster.max()) + 1 if len(self.cluster) else 0

    @property
    def n_images(self) -> int:
        return int((self.cluster >= 0).sum())

    def members(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.cluster == c) for c in range(self.n_clusters)]


_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount(values: np.ndarray) -> np.ndarray:
    """Set bits per uint64 (``np.bitwise_count`` from numpy 2; a byte table before it)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    return _BYTE_BITS[values.view(np.uint8)].reshape(*values.shape, 8).sum(axis=-1)


def _near_pairs(phash: np.ndarray, thumbs: np.ndarray, threshold: int, correlation: float,
                block: int = 512) -> list[tuple[int, int]]:
    """Every pair (i < j) whose hashes differ in at most ``threshold`` bits and whose thumbnails correlate
    at least ``correlation`` (Pearson; blocked over all pairs)."""
    pairs: list[tuple[int, int]] = []
    hashes = phash.astype(np.uint64)
    for start in range(0, len(hashes), block):
        rows = hashes[start:start + block, None] ^ hashes[None, start:]
        close = np.argwhere(_popcount(rows) <= threshold)
        i, j = close[:, 0] + start, close[:, 1] + start
        i, j = i[i < j], j[i < j]
        if len(i):
            r = np.einsum("ij,ij->i", _standardized(thumbs[i]), _standardized(thumbs[j]))
            pairs += [(int(a), int(b)) for a, b in zip(i[r >= correlation], j[r >= correlation], strict=True)]
    return pairs


def find_duplicates(exact: list[str], phash: np.ndarray, thumbs: np.ndarray, near_threshold: int | None,
                    near_correlation: float = 0.99) -> Duplicates:
    """Cluster identical pixel hashes, and near copies: perceptual hashes within ``near_threshold`` bits whose
    thumbnails also correlate at least ``near_correlation`` (None: exact duplicates only)."""
    n = len(exact)
    union = _UnionFind(n)
    first: dict[str, int] = {}
    exact_pairs = 0
    for i, digest in enumerate(exact):
        if not digest:
            continue
        if digest in first:
            union.union(first[digest], i)
            exact_pairs += 1
        else:
            first[digest] = i
    near_pairs = 0
    readable = np.flatnonzero([bool(d) for d in exact])  # an unreadable image has no hash to compare
    if near_threshold is not None and len(readable):
        for a, b in _near_pairs(phash[readable], thumbs[readable], near_threshold, near_correlation):
            i, j = int(readable[a]), int(readable[b])
            if union.find(i) != union.find(j):
                union.union(i, j)
                near_pairs += 1
    roots = union.roots()
    sizes = np.bincount(roots, minlength=n)
    cluster = np.full(n, -1, dtype=np.int64)
    for number, root in enumerate(r for r in np.unique(roots) if sizes[r] > 1):
        cluster[roots == root] = number
    return Duplicates(cluster, exact_pairs, near_pairs)


def cross_class(duplicates: Duplicates, labels: np.ndarray) -> list[np.ndarray]:
    """The clusters whose images carry more than one label."""
    return [m for m in duplicates.members() if len(np.unique(labels[m])) > 1]


def merge_groups(groups: np.ndarray | None, sample_ids: list[str], cluster: np.ndarray | None) -> np.ndarray | None:
    """The declared groups joined with the duplicate clusters (the union: one unit per connected set).

    Without clusters the declared groups come back unchanged, so the splits are exactly those without
    this check. A merged unit is named after its first declared group (or sample id when none is declared).
    """
    if cluster is None or not (cluster >= 0).any():
        return groups
    names = np.asarray(sample_ids if groups is None else groups, dtype=object).astype(str)
    unique, unit = np.unique(names, return_inverse=True)
    union = _UnionFind(len(unique))
    for c in range(int(cluster.max()) + 1):
        members = unit[cluster == c]
        for other in members[1:]:
            union.union(int(members[0]), int(other))
    return unique[union.roots()][unit]


def summary_line(duplicates: Duplicates, near_threshold: int | None) -> str:
    if not duplicates.n_clusters:
        near = f"no near duplicates within {near_threshold} bits" if near_threshold is not None else "near check off"
        return f"duplicates: none (no identical pixels; {near})"
    return (f"duplicates: {duplicates.n_clusters} cluster(s) of {duplicates.n_images} images "
            f"({duplicates.exact_pairs} identical, {duplicates.near_pairs} near within {near_threshold} bits)")
