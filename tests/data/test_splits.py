"""Fast unit tests of pure logic that end-to-end runs only reach indirectly: splits and augmentation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.data.images import ImageTable
from harness.data.splits import make_splits
from harness.errors import HarnessError
from harness.study.schema import CVSpec


def _table(n: int = 40, groups: int = 10, classes: int = 2) -> ImageTable:
    from pathlib import Path

    labels = np.arange(n) % classes
    return ImageTable([Path(f"/img/{i}.png") for i in range(n)], labels, [f"c{c}" for c in range(classes)],
                      [f"s{i}" for i in range(n)], columns=pd.DataFrame({"patient": [f"p{i % groups}" for i in range(n)]}))


@pytest.mark.parametrize("stratify", [True, False])
@pytest.mark.parametrize("group", [None, "patient"])
def test_every_sample_is_validated_once_per_repeat_and_groups_never_straddle(stratify: bool, group: str | None) -> None:
    table = _table()
    splits = make_splits(table, CVSpec(folds=5, repeats=2, group=group, stratify=stratify), seed=3)
    assert len(splits.folds) == 10
    patients = table.columns["patient"].to_numpy()
    for repeat in (0, 1):
        folds = [f for f in splits.folds if f.repeat == repeat]
        seen = np.concatenate([f.val for f in folds])
        assert sorted(seen.tolist()) == list(range(40)), "each sample validated exactly once per repeat"
        for f in folds:
            assert not set(f.train) & set(f.val)
            if group:
                assert not set(patients[f.train]) & set(patients[f.val]), "a patient on both sides"
    first, second = ([f.val.tolist() for f in splits.folds if f.repeat == r] for r in (0, 1))
    assert first != second, "repeats reshuffle"
    again = make_splits(table, CVSpec(folds=5, repeats=2, group=group, stratify=stratify), seed=3)
    assert all(np.array_equal(a.val, b.val) for a, b in zip(splits.folds, again.folds, strict=True))


def test_too_few_groups_for_the_folds_is_refused() -> None:
    with pytest.raises(HarnessError, match="3 distinct group"):
        make_splits(_table(groups=3), CVSpec(folds=5, group="patient"), seed=0)
