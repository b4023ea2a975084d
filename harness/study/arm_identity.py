"""What makes an arm: its resolved settings (as the run directory's study.yaml records them), and which
arms of a study are the same model trained the same way (their comparison can only say 'equivalent')."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from harness.study.loader import Arm, LoadedStudy


def resolved_arm(arm: Arm) -> dict[str, Any]:
    """One arm as study.yaml records it: backbone, attention with its options, pretrained, training."""
    return {"backbone": arm.backbone, "attention": {"name": arm.attention_name, **arm.attention_options},
            "pretrained": arm.pretrained, "training": arm.training.model_dump(mode="json")}


def identical_arms(arms: Mapping[str, Any]) -> list[str]:
    """One warning per arm that repeats an earlier arm exactly (resolved arms: name -> settings)."""
    first: dict[str, str] = {}
    warnings = []
    for name, settings in arms.items():
        key = json.dumps(settings, sort_keys=True, default=str)
        if key in first:
            warnings.append(f"arms {first[key]} and {name} are identical (same backbone, attention, options and "
                            "training): comparing them measures only seed noise; change or remove one")
        first.setdefault(key, name)
    return warnings


def resolved_study(study: LoadedStudy) -> dict[str, Any]:
    """The study as the run directory's study.yaml records it: every default written out, arms resolved."""
    data = study.spec.model_dump(mode="json", exclude={"grid"})
    data["arms"] = {name: resolved_arm(a) for name, a in study.arms.items()}
    return data


def study_git_commit(folder: Path) -> str:
    """The commit of the repository holding the study file, if it is in one ('' otherwise)."""
    import subprocess

    try:
        done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
