"""`harness schema`: the study file's JSON Schema accepts every shipped study and refuses misspelled keys,
with the components' names and option models wired in."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli.main import main
from harness.registry import build_registry, make_plugin_manager
from harness.study.json_schema import study_json_schema

jsonschema = pytest.importorskip("jsonschema")  # the `test` extra

STUDIES = sorted((Path(__file__).parents[2] / "studies").glob("*.yaml"))
QUICKSTART = yaml.safe_load((Path(__file__).parents[2] / "studies" / "quickstart.yaml").read_text())


@pytest.fixture(scope="module")
def validator() -> Any:
    pm, records = make_plugin_manager(["harness_plugins.models.plugin", "harness_plugins.attention.plugin",
                                       "harness_plugins.datasets.plugin", "harness_plugins.optim.plugin",
                                       "harness_plugins.loggers.tensorboard", "harness_plugins.loggers.mlflow"],
                                      entry_points=False)
    schema = study_json_schema(build_registry(pm, records))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_there_are_shipped_studies() -> None:
    assert len(STUDIES) >= 3


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_schema_accepts_every_shipped_study(validator: Any, path: Path) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def _changed(change: dict[str, Any]) -> dict[str, Any]:
    from harness.study.loader import _deep_merge

    return _deep_merge(copy.deepcopy(QUICKSTART), change)


@pytest.mark.parametrize(("change", "where"), [
    ({"trainig": {"epochs": 1}}, []),
    ({"arms": {"se-resnet18": {"attention": {"reductio": 4}}}}, ["arms", "se-resnet18", "attention"]),
    ({"arms": {"se-resnet18": {"attention": {"squeeze": "median"}}}}, ["arms", "se-resnet18", "attention"]),
    ({"arms": {"resnet18": {"backbone": "resnet81"}}}, ["arms", "resnet18", "backbone"]),
    ({"training": {"optimizer": {"momentun": 0.9}}}, ["training", "optimizer"]),
    ({"training": {"scheduler": {"steps": 3}}}, ["training", "scheduler"]),
    ({"dataset": {"options": {"clases": 2}}}, ["dataset"]),
    ({"cv": {"fold": 3}}, ["cv"]),
], ids=["top-level", "attention option", "attention value", "backbone", "optimizer", "scheduler", "dataset", "cv"])
def test_schema_refuses_a_misspelled_key(validator: Any, change: dict[str, Any], where: list[str]) -> None:
    assert list(validator.iter_errors(QUICKSTART)) == []
    errors = list(validator.iter_errors(_changed(change)))
    assert [list(e.absolute_path) for e in errors] == [where]


def test_schema_wires_in_the_option_models(validator: Any) -> None:
    attention = validator.schema["$defs"]["ArmSpec"]["properties"]["attention"]["anyOf"]
    se = next(b for b in attention if b.get("properties", {}).get("name", {}).get("const") == "se")
    assert se["properties"]["reduction"]["default"] == 16 and se["additionalProperties"] is False
    assert "se" in attention[0]["enum"] and "none" in attention[0]["enum"]
    # the study's optimizer needs its name (but for the default, sgd); an arm's overrides are merged into it
    study = copy.deepcopy(QUICKSTART)
    study["training"]["optimizer"] = {"name": "adam", "betas": [0.9, 0.99]}
    assert validator.is_valid(study)
    study["training"]["optimizer"] = {"betas": [0.9, 0.99]}  # sgd has no betas
    assert not validator.is_valid(study)
    assert validator.is_valid(_changed({"arms": {"resnet18": {"training": {"optimizer": {"betas": [0.9, 0.99]}}}}}))
    assert validator.is_valid(_changed({"dataset": {"augment": "light"}}))
    study["training"]["optimizer"] = {"name": "adam", "betas": [0.9, "high"]}  # a tuple, checked as one in draft 7
    assert not validator.is_valid(study)


def test_schema_command_prints_or_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "draft-07" in printed["$schema"] and "ArmSpec" in printed["$defs"]
    out = tmp_path / "study.schema.json"
    assert main(["schema", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == printed


def test_schema_plugin_flag_adds_a_studys_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lab_backbones.py").write_text(
        "from harness import hookimpl\nfrom harness.contracts import BackboneInfo\n\n"
        "@hookimpl\ndef register_backbones():\n    return [BackboneInfo('labnet', print, 'a lab backbone')]\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def backbones(*argv: str) -> list[str]:
        assert main(["schema", *argv]) == 0
        return json.loads(capsys.readouterr().out)["$defs"]["ArmSpec"]["properties"]["backbone"]["anyOf"][0]["enum"]

    assert "labnet" not in backbones() and "labnet" in backbones("--plugin", "lab_backbones")
    assert main(["schema", "--plugin", "lab_backbonez"]) == 2
    assert "--plugin lab_backbonez: no such module" in capsys.readouterr().err


def test_schema_takes_datasets_instead_of_dataset(validator: Any) -> None:
    entry = {**QUICKSTART["dataset"], "id": "easy", "cv": {"folds": 2}}
    several = {key: value for key, value in QUICKSTART.items() if key != "dataset"} | {"datasets": [entry]}
    assert list(validator.iter_errors(several)) == []
    misspelled = several | {"datasets": [{**entry, "cv": {"fold": 2}}]}
    assert [list(e.absolute_path) for e in validator.iter_errors(misspelled)] == [["datasets", 0, "cv"]]
    assert list(validator.iter_errors(several | {"datasets": [{k: v for k, v in entry.items() if k != "id"}]}))
    neither = {key: value for key, value in QUICKSTART.items() if key != "dataset"}
    assert list(validator.iter_errors(neither)) and list(validator.iter_errors({**several, "dataset": QUICKSTART["dataset"]}))


def test_schema_takes_any_timm_name_and_loggers_by_name_or_mapping(validator: Any) -> None:
    study = _changed({"arms": {"resnet18": {"backbone": "timm/resnet10t"}},
                      "loggers": ["tensorboard", {"name": "mlflow", "experiment": "se-ultrasound"}]})
    assert list(validator.iter_errors(study)) == []
    wrong = _changed({"arms": {"resnet18": {"backbone": "timm/"}}, "loggers": ["tensorbord", {"name": "mlflow", "experimen": "x"}]})
    assert sorted(list(e.absolute_path) for e in validator.iter_errors(wrong)) == [
        ["arms", "resnet18", "backbone"], ["loggers", 0], ["loggers", 1]]
