"""The CLI for studies over several datasets: validate names each dataset, run refuses what it cannot do."""

from __future__ import annotations

from typing import Any

import pytest

from harness.cli.main import main

SMALL = {"name": "phantom", "image_size": 16, "options": {"classes": 2, "per_class": 6, "size": 16}}


def test_validate_lists_the_datasets_and_names_the_one_with_a_mistake(  # type: ignore[no-untyped-def]
        multi_study, capsys: pytest.CaptureFixture[str]) -> None:
    good = multi_study([{**SMALL, "id": "a"}, {**SMALL, "id": "b"}])
    assert main(["validate", str(good), "--no-data"]) == 0
    assert "OK (2 datasets: a, b; 2 arm(s): plain, se; data not checked)" in capsys.readouterr().out
    bad: dict[str, Any] = {**SMALL, "id": "b", "image_size": 2}
    assert main(["validate", str(multi_study([{**SMALL, "id": "a"}, bad])), "--no-data"]) == 2
    err = capsys.readouterr().err
    assert "datasets[b].image_size" in err and "datasets[a]" not in err


def test_run_refuses_workers_for_several_datasets(multi_study, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = multi_study([{**SMALL, "id": "a"}, {**SMALL, "id": "b"}])
    assert main(["run", str(study), "--workers", "2", "--quiet"]) == 2
    assert "--workers/--storage are not available" in capsys.readouterr().err
