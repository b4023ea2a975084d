"""Studies under several training settings (``settings:`` / ``settings_grid:``): one ordinary study per setting,
overrides validated with FILE:LINE and the setting's id."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli.main import main
from harness.errors import StudyError
from harness.study.settings import declares_settings, load_settings

HIGH: dict[str, Any] = {"id": "lr-high", "training": {"optimizer": {"lr": 0.1}}}
LOW: dict[str, Any] = {"id": "lr-low", "training": {"optimizer": {"lr": 0.001}, "epochs": 1}}


def _study(tmp_path: Path, base: dict[str, Any], **top: Any) -> Path:
    study = copy.deepcopy(base)
    study.update(top)
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_each_setting_is_the_study_with_its_training_overrides(tiny_study: dict[str, Any], tmp_path: Path) -> None:
    path = _study(tmp_path, tiny_study, settings=[HIGH, LOW])
    assert declares_settings(path)
    multi = load_settings(path, ["training.batch_size=4"])
    assert multi.kind == "settings" and list(multi.datasets) == ["lr-high", "lr-low"]
    high, low = (multi.datasets[s].arms["se"].training for s in ("lr-high", "lr-low"))
    assert (high.optimizer.lr, high.epochs, (high.optimizer.model_extra or {})["momentum"]) == (0.1, 2, 0.9)  # merged, not replaced
    assert (low.optimizer.lr, low.epochs) == (0.001, 1)
    assert high.batch_size == low.batch_size == 4  # --set reaches every setting
    assert multi.datasets["lr-high"].spec.dataset == multi.datasets["lr-low"].spec.dataset
    assert multi.data["settings"] == [HIGH, LOW]  # the resolved study lists every setting
    one = load_settings(path, ["settings.lr-high.training.epochs=3"])  # --set reaches one setting by its id
    assert one.datasets["lr-high"].arms["se"].training.epochs == 3 and one.datasets["lr-low"].arms["se"].training.epochs == 1


def test_settings_grid_generates_readable_ids(tiny_study: dict[str, Any], tmp_path: Path) -> None:
    path = _study(tmp_path, tiny_study, settings_grid={"training.optimizer.lr": [0.1, 0.01], "training.epochs": [1, 2]})
    multi = load_settings(path)
    assert list(multi.datasets) == ["lr-0.1_epochs-1", "lr-0.1_epochs-2", "lr-0.01_epochs-1", "lr-0.01_epochs-2"]
    assert multi.datasets["lr-0.01_epochs-1"].arms["plain"].training.optimizer.lr == 0.01
    assert {"id": "lr-0.1_epochs-2", "training": {"optimizer": {"lr": 0.1}, "epochs": 2}} in multi.data["settings"]
    assert "settings_grid" not in multi.data
    assert list(load_settings(path, ["settings_grid={training.optimizer.lr: [0.5, 0.05]}"]).datasets) == ["lr-0.5", "lr-0.05"]


@pytest.mark.parametrize(("top", "expected"), [
    ({"settings": [HIGH, {**HIGH}]}, "setting id 'lr-high' is used 2 times"),
    ({"settings": [HIGH]}, "1 setting(s): list two or more"),
    ({"settings": {"lr-high": {}}}, "settings: must be a list"),
    ({"settings": [HIGH, {"training": {}}]}, "settings[1].id: required field is missing"),
    ({"settings": [HIGH, {"id": "a b"}]}, "settings[a b].id: String should match pattern"),
    ({"settings": [HIGH, {"id": "x", "trainig": {}}]}, "settings[x].trainig: unknown key 'trainig'"),
    ({"settings": [HIGH, {"id": "x", "training": {"optimzer": {"lr": 1}}}]},
     "settings[x].training.optimzer: unknown key 'optimzer' (did you mean 'optimizer'?)"),
    ({"settings": [HIGH, {"id": "x", "training": {"epochs": 0}}]}, "settings[x].training.epochs"),
    ({"settings_grid": {"optimizer.lr": [0.1, 0.01]}}, "write the key as training.optimizer.lr"),
    ({"settings_grid": {"training.optimizer.lr": []}}, "non-empty lists"),
    ({"settings": [HIGH, LOW], "datasets": [{"id": "a"}]}, "settings cannot be combined with datasets:"),
])
def test_mistakes_name_the_setting_and_line(tiny_study: dict[str, Any], tmp_path: Path, top: dict[str, Any], expected: str) -> None:
    with pytest.raises(StudyError) as caught:
        load_settings(_study(tmp_path, tiny_study, **top))
    assert expected in str(caught.value)
    assert "settings.yaml:" in str(caught.value)  # FILE:LINE


def test_an_override_problem_points_at_the_settings_line(tiny_study: dict[str, Any], tmp_path: Path) -> None:
    path = _study(tmp_path, tiny_study, settings=[HIGH, {"id": "x", "training": {"optimzer": {"lr": 1}}}])
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "optimzer" in text)
    with pytest.raises(StudyError) as caught:
        load_settings(path)
    assert f"settings.yaml:{line}: settings[x].training.optimzer" in str(caught.value)


def test_validate_and_run_dispatch_and_refuse_mixing_with_datasets(tiny_study: dict[str, Any], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(_study(tmp_path, tiny_study, settings=[HIGH, LOW]))]) == 0
    assert "2 settings: lr-high, lr-low" in capsys.readouterr().out
    bad = _study(tmp_path, tiny_study, settings=[HIGH, LOW], arms={"plain": {"backbone": "resnet20", "attention": "sse"}},
                 compare={"baseline": "plain"})
    assert main(["validate", "--no-data", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("unknown attention variant 'sse'") == 1 and "[lr-high]" not in err  # study-wide: once
    study = copy.deepcopy(tiny_study)
    study["datasets"] = [{**study.pop("dataset"), "id": "a"}]
    study["settings"] = [HIGH, LOW]
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump(study))
    assert main(["validate", str(both)]) == 2 and "settings cannot be combined with datasets:" in capsys.readouterr().err
    assert main(["tune", str(_study(tmp_path, tiny_study, settings=[HIGH, LOW]))]) == 2
    assert "declares settings" in capsys.readouterr().err


def test_json_schema_knows_settings_and_settings_grid(tiny_study: dict[str, Any], builtin_registry) -> None:  # type: ignore[no-untyped-def]
    jsonschema = pytest.importorskip("jsonschema")
    from harness.study.json_schema import study_json_schema

    validator = jsonschema.Draft7Validator(study_json_schema(builtin_registry))
    good = {**copy.deepcopy(tiny_study), "settings": [HIGH, LOW], "settings_grid": {"training.epochs": [1, 2]}}
    assert not list(validator.iter_errors(good))
    for bad in ({"settings": [{"id": "x", "trainig": {}}]}, {"settings": [{"training": {}}]},
                {"settings": [{"id": "x", "training": {"optimzer": {}}}]}, {"settings_grid": {"optimizer.lr": [0.1]}}):
        assert list(validator.iter_errors({**copy.deepcopy(tiny_study), **bad})), bad
    several = {k: v for k, v in copy.deepcopy(tiny_study).items() if k != "dataset"}
    several["datasets"] = [{**tiny_study["dataset"], "id": "a"}]
    assert not list(validator.iter_errors(several))
    assert list(validator.iter_errors({**several, "settings": [HIGH, LOW]}))  # settings with datasets: refused
