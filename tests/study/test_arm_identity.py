"""What makes an arm: resolved arms as study.yaml records them, and identical arms warned about."""

from __future__ import annotations

from typing import Any

from harness.study.arm_identity import identical_arms, resolved_arm, resolved_study
from harness.study.loader import load_study


def test_identical_arms_are_named_and_distinct_ones_are_not(write_study) -> None:  # type: ignore[no-untyped-def]
    arms: dict[str, Any] = {"plain": {"backbone": "resnet20", "attention": "none"},
                            "again": {"backbone": "resnet20", "attention": "none"},
                            "se": {"backbone": "resnet20", "attention": {"name": "se", "reduction": 4}}}
    study = load_study(write_study(arms=arms))
    resolved = {name: resolved_arm(arm) for name, arm in study.arms.items()}
    assert resolved["se"]["attention"] == {"name": "se", "reduction": 4}
    warnings = identical_arms(resolved)
    assert len(warnings) == 1 and warnings[0].startswith("arms plain and again are identical")
    recorded = resolved_study(study)
    assert recorded["arms"] == resolved and recorded["seed"] == 0
