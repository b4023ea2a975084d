"""cv.vary / cv.variance: which seed each repeat uses per source, the default unchanged, fingerprints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from harness.data.images import ImageTable
from harness.data.splits import make_splits
from harness.seeds import (
    cell_seeds,
    describe,
    is_default,
    seed_groups,
    seed_key,
    sklearn_seed,
    stream_seed,
    varied_sources,
)
from harness.study.schema import CVSpec


def test_default_keys_are_todays_streams() -> None:
    """The default (every source varies) gives each cell exactly the seeds it had before cv.vary existed:
    init (seed, init, repeat, fold), order and augment from (seed, fold, repeat, fold)."""
    cv = CVSpec(folds=3, repeats=4)
    assert is_default(cv) and describe(cv) == ""
    for repeat in range(4):
        for fold in range(3):
            seeds = cell_seeds(11, cv, repeat, fold)
            assert seeds["init"] == stream_seed(11, "init", repeat, fold)
            assert seeds["order"] == seeds["augment"] == stream_seed(11, "fold", repeat, fold)
        assert seed_key(cv, "split", repeat) == repeat


def _table(n: int = 40) -> ImageTable:
    labels = np.arange(n) % 2
    return ImageTable([Path(f"/img/{i}.png") for i in range(n)], labels, ["c0", "c1"], [f"s{i}" for i in range(n)],
                      pd.DataFrame({"patient": [f"p{i % 10}" for i in range(n)]}))


def test_default_splits_are_todays_splits() -> None:
    """The default draws repeat r's k-fold from (seed, split, r), as before; vary without split repeats
    repeat 0's folds (and inner split) in every repeat."""
    from sklearn.model_selection import StratifiedKFold

    table = _table()
    splits = make_splits(table, CVSpec(folds=4, repeats=3), seed=5)
    for fold in splits.folds:
        kfold = StratifiedKFold(4, shuffle=True, random_state=sklearn_seed(5, "split", fold.repeat))
        expected = list(kfold.split(np.arange(40), table.labels))[fold.fold][1]
        assert fold.val.tolist() == sorted(expected.tolist())
    fixed = make_splits(table, CVSpec(folds=4, repeats=3, vary=["init", "order"], group="patient"), seed=5,
                        inner_fraction=0.2)
    by_repeat = [[(f.val.tolist(), f.inner.tolist()) for f in fixed.folds if f.repeat == r] for r in range(3)]
    assert by_repeat[0] == by_repeat[1] == by_repeat[2]
    varied = make_splits(table, CVSpec(folds=4, repeats=2, vary=["split"]), seed=5)
    assert [f.val.tolist() for f in varied.folds[:4]] != [f.val.tolist() for f in varied.folds[4:]]


def test_vary_init_keeps_split_order_augment_of_repeat_zero() -> None:
    cv = CVSpec(folds=2, repeats=3, vary=["init"])
    assert [seed_key(cv, "split", r) for r in range(3)] == [0, 0, 0]
    assert [seed_key(cv, "init", r) for r in range(3)] == [0, 1, 2]
    first, third = cell_seeds(0, cv, 0, 1), cell_seeds(0, cv, 2, 1)
    assert first["order"] == third["order"] and first["augment"] == third["augment"]
    assert first["init"] != third["init"]
    assert "init only (split, order, augment fixed" in describe(cv)


def test_vary_order_without_augment_separates_the_two_streams() -> None:
    cv = CVSpec(folds=2, repeats=2, vary=["order"])
    seeds = cell_seeds(0, cv, 1, 0)
    assert seeds["order"] != seeds["augment"] == cell_seeds(0, cv, 0, 0)["augment"]


def test_one_at_a_time_design_sets_repeats_and_groups() -> None:
    cv = CVSpec(folds=2, variance={"sources": ["split", "init"], "seeds": 3, "together": True})
    assert cv.repeats == 7
    assert varied_sources(cv)[1:] == [frozenset({"split"})] * 2 + [frozenset({"init"})] * 2 + [frozenset({"split", "init"})] * 2
    groups = {g.label: g.repeats for g in seed_groups(cv)}
    assert groups == {"split": (0, 1, 2), "init": (0, 3, 4), "together": (0, 5, 6)}
    assert [seed_key(cv, "split", r) for r in range(7)] == [0, 1, 2, 0, 0, 5, 6]
    assert CVSpec.model_validate(cv.model_dump()) == cv  # the resolved study loads again


@pytest.mark.parametrize(("cv", "message"), [
    ({"vary": []}, "cv.vary is empty"),
    ({"vary": ["init", "init"]}, "lists a source twice"),
    ({"vary": ["seed"]}, "split"),
    ({"variance": {"sources": ["init"]}, "repeats": 2}, "needs 4 repeats"),
    ({"variance": {"sources": ["init"]}, "vary": ["init"]}, "keep one"),
    ({"variance": {"sources": ["split", "init", "order", "augment"], "seeds": 30}}, "more than the 100"),
    ({"stop_when_settled": True}, "set cv.repeats to 2 or more"),
    ({"stop_when_settled": True, "repeats": 4, "fold_column": "split"}, "predefined folds"),
    ({"stop_when_settled": True, "variance": {"sources": ["init"]}}, "do not mix"),
])
def test_seeding_mistakes_are_clear(cv: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CVSpec.model_validate(cv)


def test_predefined_folds_allow_repeats_that_keep_the_split() -> None:
    """cv.fold_column fixes the folds: repeats may vary init/order/augment on them, never the split."""
    from harness.errors import HarnessError

    table = _table()
    table.columns["published"] = [str(i % 3) for i in range(40)]
    splits = make_splits(table, CVSpec(fold_column="published", repeats=2, vary=["init"]), seed=0)
    assert [f.val.tolist() for f in splits.folds if f.repeat == 0] == [f.val.tolist() for f in splits.folds if f.repeat == 1]
    with pytest.raises(HarnessError, match="leave split out of cv.vary"):
        make_splits(table, CVSpec(fold_column="published", repeats=2), seed=0)


def test_stop_when_settled_is_declared_and_its_mistakes_name_the_line(write_study, capsys, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    from harness.cli.main import main
    from harness.study.json_schema import study_json_schema

    cv = study_json_schema(builtin_registry)["$defs"]["CVSpec"]["properties"]["stop_when_settled"]
    assert cv["default"] is False and "maximum" in cv["description"]
    assert CVSpec.model_validate({"stop_when_settled": True, "repeats": 10}).stop_when_settled
    study = write_study({"cv": {"folds": 2, "repeats": 1, "stop_when_settled": True}})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert f"{study}:" in err and "cv: cv.stop_when_settled takes cv.repeats as the maximum" in err
    study = write_study({"cv": {"folds": 2, "repeats": 3, "stop_when_settled": True},
                         "compare": {"metric": "test_accuracy"}})
    assert main(["validate", str(study)]) == 2
    assert "compare.metric: cv.stop_when_settled looks at cross-validation scores" in capsys.readouterr().err
