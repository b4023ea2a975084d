"""Bad input: each mistake gets one clear message naming the thing and the fix, exit code 2.
The study loader is fuzzed: only the harness's own error type (with a message) ever escapes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli.main import main
from harness.errors import HarnessError
from harness.study.loader import load_study

CASES: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("unknown key", {"training": {"epoch": 2}}, [], r"training\.epoch: unknown key 'epoch' \(did you mean 'epochs'"),
    ("negative lr", {"training": {"optimizer": {"lr": -0.1}}}, [], r"training\.optimizer\.lr: Input should be greater than 0"),
    ("folds < 2", {"cv": {"folds": 1}}, [], r"cv\.folds: Input should be greater than or equal to 2"),
    ("test_fraction >= 1", {"cv": {"test_fraction": 1.0}}, [], r"cv\.test_fraction: Input should be less than 1"),
    ("wrong type", {"training": {"epochs": "many"}}, [], r"training\.epochs: Input should be a valid integer"),
    ("unknown backbone", {"arms": {"plain": {"backbone": "resnet21"}}}, [], r"unknown backbone 'resnet21' \(did you mean .*'resnet20'.*\); known: .*resnet20"),
    ("unknown attention", {"arms": {"plain": {"attention": "sse"}}}, [], r"unknown attention variant 'sse' \(did you mean 'se'"),
    ("unknown dataset", {"dataset": {"name": "phantm"}}, [], r"unknown dataset 'phantm' \(did you mean 'phantom'"),
    ("unknown scheduler", {"training": {"scheduler": {"name": "stepp"}}}, [], r"unknown scheduler 'stepp' \(did you mean 'step'"),
    ("bad scheduler option", {"training": {"scheduler": {"name": "step", "steps": 3}}}, [], r"scheduler 'step': no option 'steps' \(did you mean 'step_size'"),
    ("SE reduction > channels", {"arms": {"se": {"attention": {"name": "se", "reduction": 64}}}}, [],
     r"arms\.se\.attention: SE reduction r=64 is larger than a block's 16 channels"),
    ("--set bad path", {}, ["--set", "training.batch=8"], r"--set: training\.batch: unknown key 'batch' \(did you mean 'batch_size'"),
    ("--set bad optimizer option", {}, ["--set", "training.optimizer.lrr=0.1"], r"optimizer 'sgd': no option 'lrr' \(did you mean 'lr'"),
    ("--set not KEY=VALUE", {}, ["--set", "training.epochs"], r"expected KEY=VALUE"),
    ("group column missing", {"cv": {"group": "patiend"}}, [], r"cv\.group: the dataset has no column 'patiend' \(did you mean 'patient'"),
]


@pytest.mark.parametrize(("update", "extra", "pattern"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_has_one_clear_message(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
                                         update: dict[str, Any], extra: list[str], pattern: str) -> None:
    study = write_study(update)
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--quiet", *extra]) == 2
    err = capsys.readouterr().err
    assert re.search(pattern, err), err
    assert "Traceback" not in err


def test_missing_dataset_csv(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = write_study()
    data = yaml.safe_load(study.read_text())
    data["dataset"] = {"name": "csv", "options": {"path": "nope.csv"}}
    study.write_text(yaml.safe_dump(data))
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert re.search(r"dataset CSV .*nope\.csv does not exist; check dataset\.options\.path", capsys.readouterr().err)


def test_missing_study_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml: study file not found" in capsys.readouterr().err


def test_non_utf8_study_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("name: f\xf6tal\n".encode("latin-1"))
    assert main(["validate", str(path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


KEYS = st.sampled_from(["name", "seed", "dataset", "cv", "training", "arms", "grid", "compare", "plugins", "tune",
                        "folds", "epochs", "optimizer", "lr", "backbone", "attention", "reduction", "options", "x"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
                      max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.one_of(st.dictionaries(KEYS, VALUES, max_size=8), VALUES))
def test_fuzzed_study_files_only_raise_harness_errors(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        load_study(path, [])
    except HarnessError as exc:
        assert str(exc).strip()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200), overrides=st.lists(st.text(max_size=20), max_size=3))
def test_fuzzed_raw_text_and_overrides_only_raise_harness_errors(tmp_path: Path, text: str, overrides: list[str]) -> None:
    path = tmp_path / "raw.yaml"
    path.write_bytes(text.encode("utf-8", "replace"))
    try:
        load_study(path, overrides)
    except HarnessError as exc:
        assert str(exc).strip()
