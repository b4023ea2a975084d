from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import StudyError
from harness.study.loader import expand_grid, load_study

BROKEN = """\
name: broken
seed: 0
dataset: {name: phantom, image_size: 32}
cv:
  folds: 1
  test_fraction: 1.5
training:
  epochs: 2
  bacth_size: 8
  optimizer: {name: sgd, lr: -0.1}
arms:
  a: {backbone: resnet20, attention: none}
  b: {backbone: resnet200, attention: {name: se, reduction: 4}}
  c: {backbone: resnet20, attention: sqeeze}
compare: {baseline: resnet18}
"""


def test_validate_reports_every_problem_with_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "broken.yaml"
    study.write_text(BROKEN)
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert f"{study}:5: cv.folds:" in err
    assert f"{study}:6: cv.test_fraction:" in err
    assert f"{study}:9: training.bacth_size: unknown key 'bacth_size' (did you mean 'batch_size'?)" in err
    assert f"{study}:10: training.optimizer.lr:" in err
    assert f"{study}:15: compare.baseline: no arm named 'resnet18'" in err


def test_validate_names_unknown_components(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "names.yaml"
    text = BROKEN.replace("folds: 1", "folds: 2").replace("1.5", "0.0").replace("bacth_size", "batch_size")
    study.write_text(text.replace("lr: -0.1", "lr: 0.1").replace("resnet18}", "a}"))
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert f"{study}:13: arms.b.backbone: unknown backbone 'resnet200' (did you mean" in err
    assert f"{study}:14: arms.c.attention: unknown attention variant 'sqeeze'" in err


def test_malformed_yaml_has_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "bad.yaml"
    study.write_text("name: x\ndataset: {name: phantom\narms: {}\n")
    assert main(["validate", str(study)]) == 2
    assert f"{study}:3: <top>: malformed YAML, column" in capsys.readouterr().err


def test_yaml_cannot_construct_python_objects(tmp_path: Path) -> None:
    study = tmp_path / "evil.yaml"
    study.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(StudyError, match="malformed YAML"):
        load_study(study)


def test_set_overrides_and_bad_set(write_study) -> None:  # type: ignore[no-untyped-def]
    path = write_study()
    study = load_study(path, ["training.epochs=7", "arms.se.attention.reduction=8"])
    assert study.arms["plain"].training.epochs == 7
    assert study.arms["se"].attention_options == {"reduction": 8}
    with pytest.raises(StudyError, match="--set: training.epoch: unknown key 'epoch' \\(did you mean 'epochs'"):
        load_study(path, ["training.epoch=2"])
    with pytest.raises(StudyError, match="expected KEY=VALUE"):
        load_study(path, ["training.epochs"])


def test_grid_makes_stable_readable_arm_ids(write_study) -> None:  # type: ignore[no-untyped-def]
    grid = {"backbone": ["resnet20"], "attention": ["none", {"name": "se", "reduction": 4}]}
    assert list(expand_grid(grid)) == ["resnet20-none", "resnet20-se-reduction4"]
    path = write_study({"grid": grid})
    study = load_study(path)
    assert set(study.arms) == {"plain", "se", "resnet20-none", "resnet20-se-reduction4"}
    assert study.arms["resnet20-se-reduction4"].attention_options == {"reduction": 4}


def test_arm_training_overrides_merge(write_study) -> None:  # type: ignore[no-untyped-def]
    path = write_study({"arms": {"se": {"training": {"optimizer": {"lr": 0.2}}}}})
    study = load_study(path)
    assert study.arms["se"].training.optimizer.lr == 0.2
    assert study.arms["se"].training.optimizer.model_extra == {"momentum": 0.9}
    assert study.arms["plain"].training.optimizer.lr == 0.05


def test_a_scalar_where_a_mapping_belongs_names_the_keys(write_study) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"warmup": 3, "ema": 0.999}})
    with pytest.raises(StudyError) as caught:
        load_study(study)
    messages = [problem.message for problem in caught.value.problems]
    assert "expected a mapping with keys from: epochs, start_factor, e.g. {epochs: ...} (got 3)" in messages
    assert "expected a mapping with keys from: decay, e.g. {decay: ...} (got 0.999)" in messages
    assert not any("WarmupSpec" in m or "EmaSpec" in m or m.startswith("Value error") for m in messages)
