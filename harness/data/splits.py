"""Seeded cross-validation splits that depend only on the data and the seed, so every arm sees the same folds."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.data.images import ImageTable
from harness.errors import HarnessError
from harness.seeds import seed_key, sklearn_seed
from harness.study.schema import CVSpec


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    train: np.ndarray  # sample indices: the fold's whole training part (inner split included)
    val: np.ndarray
    inner: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))  # selection split, within train

    @property
    def fit(self) -> np.ndarray:
        """The samples the weights are fitted on: the training part minus the inner selection split."""
        return np.setdiff1d(self.train, self.inner) if len(self.inner) else self.train


@dataclass(frozen=True)
class Splits:
    folds: list[Fold]
    test: np.ndarray  # held-out sample indices (may be empty)
    table: pd.DataFrame  # sample_id, group, repeat, fold, role


def _groups(table: ImageTable, cv: CVSpec) -> np.ndarray | None:
    """The grouping the folds keep together: the declared groups joined with any duplicate-image clusters."""
    from harness.data.duplicates import merge_groups

    return merge_groups(_declared_groups(table, cv), table.sample_ids, table.clusters)


def _declared_groups(table: ImageTable, cv: CVSpec) -> np.ndarray | None:
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


def _check_group_overlap(groups: np.ndarray, test: np.ndarray, pool: np.ndarray) -> None:
    """The official test split must not share a group (patient, video) with the CV pool: that leaks."""
    shared = np.intersect1d(groups[test], groups[pool])
    if len(shared):
        examples = ", ".join(repr(str(g)) for g in shared[:3])
        raise HarnessError(
            f"cv.group: {len(shared)} of {len(np.unique(groups[test]))} group(s) of the official test split also occur "
            f"in the cross-validation data (e.g. {examples}), so test scores would see those groups in training; "
            "fix the split column, or set cv.allow_group_overlap: true to accept it (the report's test scores are "
            "then optimistic)"
        )


def make_splits(table: ImageTable, cv: CVSpec, seed: int, inner_fraction: float | None = None) -> Splits:
    """Held-out test part (official split or ``test_fraction``), then repeated (grouped) stratified k-fold.

    With ``inner_fraction`` each fold's training part also gets an inner selection split (see
    :func:`inner_split`); it is made here, once, so every arm gets the same indices.
    """
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
                splitter = GroupShuffleSplit(n_splits=1, test_size=cv.test_fraction, random_state=sklearn_seed(seed, "split"))
                pool, test = next(splitter.split(everything, labels, groups))
            else:
                splitter = StratifiedShuffleSplit(n_splits=1, test_size=cv.test_fraction,
                                                  random_state=sklearn_seed(seed, "split"))
                pool, test = next(splitter.split(everything, labels))
        except ValueError as exc:  # scikit-learn: a test part of 0 samples, or fewer than the classes
            raise HarnessError(f"cv.test_fraction = {cv.test_fraction} cannot hold out a test part of {n} samples "
                               f"({len(set(labels.tolist()))} classes): {exc}; raise it, or set it to 0") from None
    elif table.official_test is not None and table.official_test.any():
        test, pool = np.flatnonzero(table.official_test), np.flatnonzero(~table.official_test)
        if groups is not None and not cv.allow_group_overlap:
            _check_group_overlap(groups, test, pool)
    else:
        pool, test = everything, np.array([], dtype=np.int64)
    pool_groups = None if groups is None else groups[pool]
    predefined = _predefined_folds(table, cv, pool) if cv.fold_column else None
    n_folds = cv.folds if predefined is None else len(predefined)
    _check_feasible(labels[pool], pool_groups, n_folds, table.class_names, "cross-validation data")
    folds: list[Fold] = []
    rows = []
    for repeat in range(cv.repeats):
        key = seed_key(cv, "split", repeat)  # the repeat itself, or 0 when cv.vary leaves the split fixed
        rs = sklearn_seed(seed, "split", key)  # independent per repeat (not seed + 1000 r)
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
            inner = (inner_split(train, labels, groups, inner_fraction, seed, key, fold, cv.stratify)
                     if inner_fraction else np.array([], dtype=np.int64))
            folds.append(Fold(repeat, fold, train, val, inner))
            roles = (("train", folds[-1].fit), ("inner", inner), ("val", val), ("test", test))
            for role, idx in roles:
                if role == "inner" and not len(idx):
                    continue
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
    if (cv.repeats > 1 and any(seed_key(cv, "split", r) for r in range(cv.repeats))) or cv.test_fraction > 0:
        raise HarnessError("cv.fold_column gives fixed folds: remove cv.repeats (or leave split out of cv.vary) "
                           "and cv.test_fraction (a held-out test set comes from the dataset's official split)")
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


def inner_split(train: np.ndarray, labels: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int,
                repeat: int, fold: int, stratify: bool = True) -> np.ndarray:
    """The inner selection split of one fold's training part (sorted sample indices).

    Stratified by label, grouped by the same group column as the folds (so no group straddles it),
    seeded by (seed, repeat, fold) alone: every arm gets the same indices. With groups the split is
    the first fold of a ``round(1 / fraction)``-fold grouped split, so its size is approximate.
    """
    from sklearn.model_selection import (
        GroupKFold,
        ShuffleSplit,
        StratifiedGroupKFold,
        StratifiedShuffleSplit,
    )

    rs = sklearn_seed(seed, "inner", repeat, fold)
    y = labels[train]
    where = f"training.selection.inner_fraction ({fraction:g}), repeat {repeat} fold {fold}"
    try:
        if groups is not None:
            parts = max(2, round(1 / fraction))
            train_groups = groups[train]
            if len(np.unique(train_groups)) < parts:
                raise HarnessError(
                    f"{where}: the fold's training part has {len(np.unique(train_groups))} group(s), too few for "
                    f"an inner split of 1/{parts} by group; raise inner_fraction or add groups")
            splitter = (StratifiedGroupKFold(parts, shuffle=True, random_state=rs) if stratify
                        else GroupKFold(parts, shuffle=True, random_state=rs))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "least populated class" is expected
                _, inner_pos = next(splitter.split(train, y, train_groups))
        else:
            splitter = (StratifiedShuffleSplit(1, test_size=fraction, random_state=rs) if stratify
                        else ShuffleSplit(1, test_size=fraction, random_state=rs))
            _, inner_pos = next(splitter.split(train, y))
    except ValueError as exc:
        raise HarnessError(f"{where}: cannot carve the inner split from {len(train)} training samples ({exc}); "
                           "raise inner_fraction or add data") from None
    return np.sort(train[inner_pos])
