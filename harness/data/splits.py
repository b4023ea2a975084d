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
        if groups is not None:
            splitter = GroupShuffleSplit(n_splits=1, test_size=cv.test_fraction, random_state=seed)
            pool, test = next(splitter.split(everything, labels, groups))
        else:
            splitter = StratifiedShuffleSplit(n_splits=1, test_size=cv.test_fraction, random_state=seed)
            pool, test = next(splitter.split(everything, labels))
    elif table.official_test is not None and table.official_test.any():
        test, pool = np.flatnonzero(table.official_test), np.flatnonzero(~table.official_test)
    else:
        pool, test = everything, np.array([], dtype=np.int64)
    pool_groups = None if groups is None else groups[pool]
    predefined = _predefined_folds(table, cv, pool) if cv.fold_column else None
    n_folds = cv.folds if predefined is None else len(predefined)
    _check_feasible(labels[pool], pool_groups, n_folds, table.class_names, "cross-validation data")
    folds: list[Fold] = []
    rows = []
    for repeat in range(cv.repeats):
        rs = seed + 1000 * repeat
        if predefined is not None:
            iterator = iter(predefined)
        elif groups is not None:
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


def _predefined_folds(table: ImageTable, cv: CVSpec, pool: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``cv.fold_column``: the folds a dataset ships with, as (train, val) positions into ``pool``."""
    from harness.errors import did_you_mean

    name = str(cv.fold_column)
    if name not in table.columns.columns:
        raise HarnessError(f"cv.fold_column: the dataset has no column {name!r}{did_you_mean(name, table.columns.columns)}; "
                           f"columns: {', '.join(map(str, table.columns.columns)) or 'none'}")
    if cv.repeats > 1 or cv.test_fraction > 0:
        raise HarnessError("cv.fold_column gives fixed folds: remove cv.repeats and cv.test_fraction "
                           "(a held-out test set comes from the dataset's official split)")
    values = table.columns[name].astype(str).to_numpy()[pool]
    if (values == "").any():
        raise HarnessError(f"cv.fold_column: {int((values == '').sum())} row(s) have no fold in column {name!r}")
    kinds = sorted(set(values), key=lambda v: (0, int(v), v) if v.lstrip("-").isdigit() else (1, 0, v))
    if len(kinds) < 2:
        raise HarnessError(f"cv.fold_column: column {name!r} has {len(kinds)} distinct value(s); folds need at least 2")
    if "folds" in cv.model_fields_set and cv.folds != len(kinds):
        raise HarnessError(f"cv.folds is {cv.folds} but column {name!r} has {len(kinds)} folds "
                           f"({', '.join(kinds)}); remove cv.folds or make them agree")
    positions = np.arange(len(pool))
    return [(positions[values != k], positions[values == k]) for k in kinds]


def _group_kfold(groups: np.ndarray, folds: int, seed: int):  # type: ignore[no-untyped-def]
    from sklearn.model_selection import GroupKFold

    return GroupKFold(folds, shuffle=True, random_state=seed).split(groups, groups=groups)
