"""What a finished cell's numbers depend on: its settings and the data's content.

A stored cell is reused only when its fingerprint matches, so changed settings, a relabelled
CSV or replaced images retrain it instead of reusing stale numbers.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from harness.data.prepared import PreparedData
from harness.run.determinism import compute_of, resolve_device
from harness.seeds import is_default
from harness.study.loader import Arm, LoadedStudy
from harness.study.schema import DuplicatesSpec


def cell_fingerprint(study: LoadedStudy, arm: Arm, data_key: str = "", compute: str | None = None) -> str:
    """What a cell's numbers depend on; a stored cell is reused only if this matches.

    ``data_key`` (:func:`data_fingerprint`) covers the data's content: labels, groups, splits and pixels.
    ``compute`` (default: the arm's own, :func:`~harness.run.determinism.compute_of`) is the device type
    and precision; ``cpu/fp32`` and a deterministic run leave the fingerprint as it was before they counted.
    """
    spec = study.spec
    training = arm.training.model_dump(mode="json", exclude={"device", "threads", "checkpoints"})  # not the science
    for key in ("warmup", "clip_grad", "ema"):  # added later, off by default: off keeps older cells' fingerprints
        if training.get(key) is None:
            training.pop(key, None)
    if training.get("deterministic", True):
        training.pop("deterministic", None)
    for key in ("compile", "cuda_graph"):  # faster paths, added later: off keeps older cells' fingerprints
        if not training.get(key, False):
            training.pop(key, None)
    compute = compute or compute_of(resolve_device(arm.training.device), arm.training.amp)
    if compute != "cpu/fp32":
        training["compute"] = compute
    seeding = set() if is_default(spec.cv) else {"vary", "variance"}  # the default keeps older cells valid
    # stop_when_settled decides how many repeats run, never a cell's numbers
    cv = spec.cv.model_dump(mode="json", exclude=({"vary", "variance"} - seeding) | {"stop_when_settled"})
    dataset = spec.dataset.model_dump(mode="json")
    if spec.dataset.duplicates == DuplicatesSpec():  # added later: the default keeps older cells' fingerprints
        dataset.pop("duplicates")
    parts = {"dataset": dataset, "cv": cv,
             "seed": spec.seed, "backbone": arm.backbone, "attention": [arm.attention_name, arm.attention_options],
             "pretrained": arm.pretrained, "training": training, "init": spec.init, "data": data_key}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def data_fingerprint(data: PreparedData) -> str:
    """A content hash of what the cells train and score on: the label table (sample ids, labels, class
    names), the splits with their groups, and the decoded image bytes (so a relabelled CSV or an image
    replaced under the same name and time stamp is noticed)."""
    digest = hashlib.blake2b(digest_size=16)
    table = data.table
    digest.update(json.dumps([table.class_names, table.sample_ids], default=str).encode())
    digest.update(np.ascontiguousarray(table.labels, dtype=np.int64).tobytes())
    digest.update(data.splits.table.to_csv(index=False).encode())
    digest.update(np.ascontiguousarray(data.splits.test, dtype=np.int64).tobytes())
    if table.clusters is not None:  # duplicate clusters joined into the grouping (absent: older fingerprints kept)
        digest.update(np.ascontiguousarray(table.clusters, dtype=np.int64).tobytes())
    pixels = data.images.pixels
    digest.update(str(tuple(pixels.shape)).encode())
    step = max(1, (64 * 1024**2) // max(1, pixels[0].numel()))  # about 64 MiB at a time (memory-mapped sets)
    for start in range(0, len(pixels), step):
        digest.update(np.ascontiguousarray(pixels[start:start + step].numpy()).tobytes())
    return digest.hexdigest()
