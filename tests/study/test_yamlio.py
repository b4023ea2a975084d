"""Study YAML attacks and slips: alias bombs, recursive aliases, deep nesting, duplicate keys,
``--set`` numbers as YAML 1.2 reads them, arm ids that collide or end in a newline."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from harness.cli.main import main

BILLION_LAUGHS = """name: lol
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _validate(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    assert main(["validate", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_billion_laughs_is_refused_quickly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(BILLION_LAUGHS) < 600
    started = time.monotonic()
    err = _validate(tmp_path, BILLION_LAUGHS, capsys)
    assert time.monotonic() - started < 5
    assert re.search(r"study\.yaml:\d+: <top>: aliases \(\*name\) expand this file to more than 100,000 values", err), err


def test_recursive_alias_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(tmp_path, "name: x\nloop: &a [1, *a]\n", capsys)
    assert "study.yaml:2: <top>: a recursive alias (an anchor used inside itself)" in err, err


def test_deep_nesting_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _validate(tmp_path, "name: x\ndeep: " + "[" * 500 + "]" * 500 + "\n", capsys)
    assert "nested deeper than 64 levels" in err, err


def test_duplicate_key_names_both_lines(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    text = write_study().read_text() + "arms:\n  other: {backbone: resnet20}\n"
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("arms:"))
    second = len(text.splitlines()) - 1
    err = _validate(tmp_path, text, capsys)
    assert f"study.yaml:{second}: arms: duplicate key 'arms' (first on line {first}, again on line {second})" in err, err


def test_set_reads_yaml_1_2_floats(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.study.loader import load_study

    study = load_study(write_study(), ["training.optimizer.weight_decay=5e-4", "training.optimizer.lr=1E-2"])
    assert study.spec.training.optimizer.model_dump()["weight_decay"] == 5e-4
    assert study.spec.training.optimizer.lr == 0.01
    path = tmp_path / "floats.yaml"  # the study file follows the same rule
    path.write_text(write_study().read_text().replace("lr: 0.05", "lr: 5e-2"))
    assert load_study(path).spec.training.optimizer.lr == 0.05


def test_set_errors_say_they_came_from_set(write_study, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", str(write_study()), "--set", "training.optimizer.momentum=fast"]) == 2
    err = capsys.readouterr().err
    assert "--set: training.optimizer.momentum: optimizer 'sgd'" in err and ":-1" not in err, err


def test_grid_arms_that_collide_are_refused(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"grid": {"pretrained": ["weights/A.pt", "weights/a.pt"]}})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "grid: grid values 'weights/a.pt' give the arm id 'weightsa.pt' of an earlier combination" in err, err


def test_arm_names_differing_in_case_are_refused(write_study, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = write_study(arms={"plain": {"backbone": "resnet20"}, "Plain": {"backbone": "resnet20"}})
    assert main(["validate", str(study)]) == 2
    assert "arm names 'plain' and 'Plain' differ only in case" in capsys.readouterr().err


def test_arm_name_ending_in_a_newline_is_refused(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = write_study()
    data = yaml.safe_load(study.read_text())
    data["arms"]["se\n"] = data["arms"].pop("se")
    study.write_text(yaml.safe_dump(data))
    assert main(["validate", str(study)]) == 2
    assert "arm name 'se\\n' may use only letters, digits" in capsys.readouterr().err
