"""Everything shared by all arms of a study, prepared once: the dataset table, the decoded
images (decoded exactly once) and the splits."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness import rundir as files
from harness.contracts import DatasetRequest
from harness.data.duplicates import (
    Duplicates,
    cross_class,
    find_duplicates,
    summary_line,
)
from harness.data.images import DecodedImages, ImageTable, decode_images, describe_bad
from harness.data.splits import Splits, make_splits
from harness.errors import HarnessError
from harness.registry import Registry
from harness.study.loader import LoadedStudy
from harness.study.schema import DuplicatesSpec

MAX_CROSS_CLASS = 5  # cross-class clusters named in the message


@dataclass
class PreparedData:
    table: ImageTable
    images: DecodedImages
    splits: Splits
    skipped: list[tuple[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)  # class/group counts, fold balance (data/describe)
    duplicates: Duplicates | None = None  # duplicate-image clusters over ``table`` (data/duplicates)

    @property
    def num_classes(self) -> int:
        return len(self.table.class_names)


def load_table(study: LoadedStudy, registry: Registry, cache_dir: Path, study_dir: Path | None = None) -> ImageTable:
    """The dataset plugin's table; relative dataset paths resolve against the study file's folder."""
    spec = study.spec.dataset
    info = registry.dataset(spec.name)
    request = DatasetRequest(spec.options, (study_dir or study.source.parent).resolve(), cache_dir, study.spec.seed)
    return info.load(request)


def prepare_data(study: LoadedStudy, registry: Registry, run_dir: Path, log: Callable[[str], None] = print,
                 cache_dir: Path | None = None, subset: np.ndarray | None = None) -> PreparedData:
    """Load the table, decode each image once (cached on disk under the run dir), make the splits."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    cache_dir = cache_dir or files.RunDir(run_dir).cache()
    table = load_table(study, registry, cache_dir)
    timings["dataset_indexing"] = time.perf_counter() - started
    for note in table.notes:
        log(f"dataset: {note}")
    started = time.perf_counter()
    images = decode_images(table.paths, study.spec.dataset.image_size, cache_dir)
    timings["decode"] = time.perf_counter() - started
    skipped: list[tuple[str, str]] = []
    if images.bad:
        if study.spec.dataset.on_bad_image == "error":
            raise HarnessError(bad_images_message(table, images.bad))
        keep = np.ones(len(table.paths), dtype=bool)
        for index, reason in images.bad:
            keep[index] = False
            skipped.append((str(table.paths[index]), reason))
        warnings.warn(f"skipping {len(skipped)} unreadable image(s) (dataset.on_bad_image: skip)", stacklevel=2)
        table = table.subset(keep)
        images = images.subset(keep)
    started = time.perf_counter()
    table, duplicates = check_duplicates(table, images, study.spec.dataset.duplicates, log)
    timings["duplicates"] = time.perf_counter() - started
    if subset is not None:  # e.g. nested CV: the inner folds see only the outer training part
        keep = np.zeros(len(table.paths), dtype=bool)
        keep[subset] = True
        table = table.subset(keep)
        images = images.subset(keep)
    splits = make_splits(table, study.spec.cv, study.spec.seed, study.spec.training.selection.inner_fraction)
    summary = describe_data(table, splits, study.spec.cv, log)
    return PreparedData(table, images, splits, skipped, timings, summary, duplicates)


def check_duplicates(table: ImageTable, images: DecodedImages, spec: DuplicatesSpec,
                     log: Callable[[str], None] = print) -> tuple[ImageTable, Duplicates]:
    """Cluster duplicate images (noted in the table's notes); stop on one image under two labels unless
    ``cross_class: allow``; attach the clusters so the splits keep each on one side (``group: true``)."""
    found = find_duplicates(images.exact, images.phash, images.thumbs, spec.near_threshold, spec.near_correlation)
    notes = [summary_line(found, spec.near_threshold)]
    mixed = cross_class(found, table.labels)
    if mixed:
        def pair(members: np.ndarray) -> str:
            other = next(i for i in members if table.labels[i] != table.labels[members[0]])
            return " and ".join(f"{table.paths[i]} ({table.class_names[table.labels[i]]})" for i in (members[0], other))

        listed = "; ".join(pair(members) for members in mixed[:MAX_CROSS_CLASS])
        message = (f"{len(mixed)} cluster(s) of duplicate images carry different labels: {listed}"
                   + (f"; ... and {len(mixed) - MAX_CROSS_CLASS} more" if len(mixed) > MAX_CROSS_CLASS else ""))
        if spec.cross_class == "error":
            raise HarnessError(f"{message}; fix the labels or remove the copies, or set "
                               "dataset.duplicates.cross_class: allow to accept them (recorded in the report)")
        notes.append(f"warning: {message} (accepted: dataset.duplicates.cross_class: allow)")
    if found.n_clusters and spec.group:
        notes.append("duplicates: each cluster stays on one side of every fold (joined with any cv.group; "
                     "dataset.duplicates.group: false only reports them)")
        table = replace(table, clusters=found.cluster)
    elif found.n_clusters:
        notes.append("warning: duplicate clusters are not grouped (dataset.duplicates.group: false): copies may sit "
                     "in both training and validation and inflate the scores")
    for note in notes:
        table.notes.append(note)
        log(f"dataset: {note}")
    return table, found


def duplicates_frame(data: PreparedData) -> pd.DataFrame:
    """One row per image in a duplicate cluster: cluster, sample_id, path, label, perceptual hash."""
    table, found = data.table, data.duplicates
    if found is None or len(found.cluster) != len(table.paths):  # nested subsets: not recorded
        return pd.DataFrame(columns=["cluster", "sample_id", "path", "label", "phash"])
    members = np.flatnonzero(found.cluster >= 0)
    members = members[np.argsort(found.cluster[members], kind="stable")]
    return pd.DataFrame({
        "cluster": found.cluster[members], "sample_id": [table.sample_ids[i] for i in members],
        "path": [str(table.paths[i]) for i in members], "label": [table.class_names[table.labels[i]] for i in members],
        "phash": [f"{int(data.images.phash[i]):016x}" for i in members]})


def describe_data(table: ImageTable, splits: Splits, cv: Any, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Log class counts, groups per class and each fold's class balance; warn about ungrouped frames."""
    from harness.data.describe import data_summary, frame_name_warning, summary_lines
    from harness.data.splits import _groups

    groups = _groups(table, cv)
    summary = data_summary(table.labels, table.class_names, groups, splits.folds, splits.test)
    for line in summary_lines(summary):
        log(f"data: {line}")
    if not (cv.group or table.group_column or cv.fold_column):  # duplicate clusters alone do not group frames
        warning = frame_name_warning(table.sample_ids, len(table.class_names))
        if warning and warning not in table.notes:
            table.notes.append(warning)
            log(f"dataset: warning: {warning}")
            warnings.warn(warning, stacklevel=3)
    return summary


def write_data_files(run_dir: Path, data: PreparedData) -> None:
    run = files.RunDir(run_dir)
    run.write_splits(data.splits.table)
    run.write_classes(data.table.class_names)
    if data.summary:
        run.write_data_summary(data.summary)
    duplicates = duplicates_frame(data)
    if len(duplicates):
        run.write_duplicates(duplicates)
    if data.skipped:
        run.write_skipped(pd.DataFrame(data.skipped, columns=["path", "reason"]))


def normalization(x_train: torch.Tensor, in_chans: int, pretrained: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet statistics for pretrained backbones, else the training fold's own statistics."""
    if pretrained:
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        return (mean.mean().view(1), std.mean().view(1)) if in_chans == 1 else (mean, std)
    generator = torch.Generator().manual_seed(0)
    from harness.data.augment import to_float

    sample = to_float(x_train[torch.randperm(len(x_train), generator=generator)[:2048]], in_chans)
    return sample.mean(dim=(0, 2, 3)).contiguous(), sample.std(dim=(0, 2, 3)).clamp_min(1e-3).contiguous()


def bad_images_message(table: ImageTable, bad: list[tuple[int, str]]) -> str:
    """What run and validate say about images that cannot be decoded (dataset.on_bad_image: error)."""
    return (f"{len(bad)} image(s) could not be read:\n{describe_bad(table, bad)}\n"
            "fix or remove them, or set dataset.on_bad_image: skip to leave them out (they are listed in the report)")
