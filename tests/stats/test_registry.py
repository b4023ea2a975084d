"""The metric registry, and its use when a study is loaded and when splits meet groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.data.images import ImageTable
from harness.data.splits import make_splits
from harness.errors import HarnessError, StudyError
from harness.stats import StatsError, resolve_metric
from harness.study.loader import load_study
from harness.study.schema import CVSpec


def test_registry_aliases_direction_and_test_prefix() -> None:
    assert resolve_metric("f1").name == "f1_macro" and resolve_metric("roc_auc").column == "roc_auc_ovr"
    loss = resolve_metric("loss")
    assert not loss.higher_is_better and loss.direction == "minimize" and loss.sign == -1
    test_f1 = resolve_metric("test_f1")
    assert test_f1.on_test and test_f1.column == "test_f1_macro"
    assert resolve_metric("accuracy").kind == "per-sample" and resolve_metric("f1").kind == "per-fold"
    with pytest.raises(StatsError, match="would select on the test set"):
        resolve_metric("test_accuracy", allow_test=False)
    with pytest.raises(StatsError, match="did you mean 'accuracy'"):
        resolve_metric("acuracy")


def test_compare_metric_is_validated_when_the_study_loads(write_study) -> None:  # type: ignore[no-untyped-def]
    """Old code accepted any compare.metric and failed after training."""
    path = write_study({"compare": {"metric": "accuarcy"}})
    with pytest.raises(StudyError) as caught:
        load_study(path)
    problem = caught.value.problems[0]
    assert problem.path == "compare.metric" and problem.line is not None and problem.file == str(path)
    assert "did you mean 'accuracy'" in problem.message
    assert load_study(write_study({"compare": {"metric": "test_f1"}})).spec.compare.metric == "test_f1"


def test_tune_metric_may_not_be_a_test_metric(write_study) -> None:  # type: ignore[no-untyped-def]
    path = write_study({"tune": {"metric": "test_accuracy", "space": {"training.optimizer.lr": {"low": 0.01, "high": 0.1}}}})
    with pytest.raises(StudyError, match="would select on the test set"):
        load_study(path)


def _table(groups: list[str], official_test: list[bool]) -> ImageTable:
    n = len(groups)
    return ImageTable(paths=[Path(f"img{i}.png") for i in range(n)], labels=np.arange(n) % 2, class_names=["a", "b"],
                      sample_ids=[f"s{i}" for i in range(n)], columns=pd.DataFrame({"patient": groups}),
                      official_test=np.array(official_test))


def test_official_test_split_sharing_groups_is_refused_unless_accepted() -> None:
    """Old code put patients in both the official test split and the CV pool without a word."""
    groups = [f"p{i // 2}" for i in range(20)]  # 10 patients, 2 images each
    test = [i in (0, 2, 3, 5) for i in range(20)]  # p0 and p2 split across test and pool; p1 wholly in test
    with pytest.raises(HarnessError, match=r"2 of 3 group\(s\) of the official test split also occur"):
        make_splits(_table(groups, test), CVSpec(folds=2, group="patient"), seed=0)
    splits = make_splits(_table(groups, test), CVSpec(folds=2, group="patient", allow_group_overlap=True), seed=0)
    assert len(splits.test) == 4
    clean = [i in (0, 1, 2, 3) for i in range(20)]
    assert len(make_splits(_table(groups, clean), CVSpec(folds=2, group="patient"), seed=0).test) == 4
