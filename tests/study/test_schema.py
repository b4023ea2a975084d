"""The study schema: declared defaults, and a search key's range checked before any trial."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.study.schema import CVSpec, ParamSpec


def test_cv_defaults_are_five_folds_one_repeat_every_seed_varied() -> None:
    cv = CVSpec()
    assert (cv.folds, cv.repeats, cv.test_fraction, cv.stratify) == (5, 1, 0.0, True)
    assert set(cv.vary) == {"split", "init", "order", "augment"}
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        CVSpec(folds=1)


@pytest.mark.parametrize("spec, message", [
    ({"low": 0.1, "high": 0.01}, "must be below high"),
    ({"low": 0.0, "high": 1.0, "log": True}, "a log range needs low > 0"),
    ({"low": 1, "high": 4, "log": True, "step": 1}, "both log and stepped"),
    ({"low": 1, "high": 4, "choices": [1]}, "not both"),
    ({"high": 4}, "needs low and high"),
])
def test_a_search_range_that_optuna_would_refuse_is_refused_here(spec: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ParamSpec.model_validate(spec)


def test_integer_ranges_are_told_from_float_ranges() -> None:
    assert ParamSpec(low=1, high=3).is_int and not ParamSpec(low=1, high=3.0).is_int
    assert not ParamSpec(low=1, high=3, step=0.5).is_int
