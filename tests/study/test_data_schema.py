"""The data part of the schema: augmentation presets resolve to what runs, and bad values are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.study.data_schema import AugmentSpec


def test_presets_resolve_and_describe_what_runs() -> None:
    assert not AugmentSpec.model_validate(None).active and AugmentSpec.model_validate(False).describe() == "none"
    light = AugmentSpec.model_validate("light")
    assert light.active and light.describe().startswith("light preset: ")
    assert AugmentSpec.model_validate({"preset": "light", "enabled": False}).describe() == "none"
    assert AugmentSpec.model_validate({"hflip": 0.5}).describe() == "hflip p=0.5"


@pytest.mark.parametrize("value, message", [
    ({"enabled": True}, "names no transform"),
    ({"scale": [1.2, 0.8]}, "0 < low <= high"),
    ({"hflip": 0.5, "hfilp": 0.5}, "Extra inputs are not permitted"),
])
def test_bad_augmentation_is_refused_with_the_reason(value: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AugmentSpec.model_validate(value)
