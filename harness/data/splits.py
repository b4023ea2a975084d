"""Seeded cross-validation splits that depend only on the data and the seed, so every arm sees the same folds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.data.images import ImageTable
from harness.errors import HarnessError
from harness.study.schema import CVSpec


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    train: np.ndarray  # sample indices
    val: np.ndarray


@dataclass(frozen=True)
class Splits:
    folds: list[Fold]
    test: np.ndarray  # held-out sample indices (may be empty)
    table: pd.DataFrame  # sample_id, group, repeat, fold, role


def _groups(table: ImageTable, cv: CVSpec) -> np.ndarray | None:
    name = cv.group or table.group_column
    if name is None:
        return None
    if name not in table.columns.columns:
        from harness.errors import did_you_mean

        raise HarnessError(
            f"cv.group: the dataset has no column {name!r}{did_you_mean(name, table.columns.columns)}; "
            f"columns: {', '.join(map(str, table.columns.columns)) or 'none'}"
        )
    return table.columns[name].astype(str).to_numpy()


def _check_feasible(labels: np.ndarray, groups: np.ndarray | None, folds: int, names: list[str], where: str) -> None:
    counts = np.bincount(labels, minlength=len(names))
    present = counts > 0
    if present.sum() < 2:
        raise HarnessError(f"{where}: only one class ({names[int(np.argmax(counts))]!r}); a classifier needs two or more")
    small = [(names[i], int(c)) for i, c in enumerate(counts) if 0 < c < folds]
    if small:
        listed = ", ".join(f"{n!r} has {c}" for n, c in small)
        raise HarnessError(f"{where}: {listed} sample(s), fewer than cv.folds = {folds}; lower cv.folds or add data")
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < folds:
            raise HarnessError(f"{where}: the group column has {n_groups} distinct group(s), fewer than cv.folds = {folds}")


def make_splits(table: ImageTable, cv: CVSpec, seed: int) -> Splits:
    """Held-out test part (official split or ``test_fraction``), then repeated (grouped) stratified k-fold."""
    from sklearn.model_selection import (
        GroupShuffleSplit,
        KFold,
        StratifiedGroupKFold,
        StratifiedKFold,
        StratifiedShuffleSplit,
    )

    n = len(table.labels)
    labels = table.labels
    groups = _groups(table, cv)
    everything = np.arange(n)
    if cv.test_fraction > 0:
        try:
            if groups is not None:
                splitter = GroupShuffleSplit(n_splits=1, test_size=cv.test_fraction, random_state=seed)
                pool, test = next(splitter.split(everything, labels, groups))
            else:
                splitter = StratifiedShuffleSplit(n_splits=1, test_size=cv.test_fraction, random_state=seed)
                pool, test = next(splitter.split(everything, labels))
        except ValueError as exc:  # scikit-learn: a test part of 0 samples, or fewer than the classes
            raise HarnessError(f"cv.test_fraction = {cv.test_fraction} cannot hold out a test part of {n} samples "
                               f"({len(set(labels.tolist()))} classes): {exc}; raise it, or set it to 0") from None
    elif table.official_test is not None and table.official_test.any():
        test, pool = np.flatnonzero(table.official_test), np.flatnonzero(~table.official_test)
    else:
        pool, test = everything, np.array([], dtype=np.int64)
    pool_groups = None if groups is None else groups[pool]
    _check_feasible(labels[pool], pool_groups, cv.folds, table.class_names, "cross-validation data")
    folds: list[Fold] = []
    rows = []
    for repeat in range(cv.repeats):
        rs = seed + 1000 * repeat
        if groups is not None:
            kfold = StratifiedGroupKFold(cv.folds, shuffle=True, random_state=rs) if cv.stratify else None
            iterator = (kfold.split(pool, labels[pool], pool_groups) if kfold else
                        _group_kfold(groups[pool], cv.folds, rs))
        elif cv.stratify:
            iterator = StratifiedKFold(cv.folds, shuffle=True, random_state=rs).split(pool, labels[pool])
        else:
            iterator = KFold(cv.folds, shuffle=True, random_state=rs).split(pool)
        for fold, (train_pos, val_pos) in enumerate(iterator):
            train, val = np.sort(pool[train_pos]), np.sort(pool[val_pos])
            folds.append(Fold(repeat, fold, train, val))
            for role, idx in (("train", train), ("val", val), ("test", test)):
                rows.append(pd.DataFrame({"sample_id": [table.sample_ids[i] for i in idx], "group": groups[idx] if groups is not None else "",
                                          "repeat": repeat, "fold": fold, "role": role}))
    return Splits(folds, np.sort(test), pd.concat(rows, ignore_index=True))


def _group_kfold(groups: np.ndarray, folds: int, seed: int):  # type: ignore[no-untyped-def]
    from sklearn.model_selection import GroupKFold

    return GroupKFold(folds, shuffle=True, random_state=seed).split(groups, groups=groups)
