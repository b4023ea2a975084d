"""validate: every schema and component problem in one round, and what it did not check said out loud."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.cli.main import main


def test_validate_reports_schema_and_component_problems_in_one_round(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    study = tmp_path / "bad.yaml"
    study.write_text("name: bad\ndataset: {name: phantom, image_size: 32, options: {classes: 2, per_class: 8}}\n"
                     "cv: {folds: 2}\ntrainng: {epochs: 1}\narms:\n  a: {backbone: resnet2000, attention: none}\n")
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert "bad.yaml:4: trainng: unknown key 'trainng'" in err and "bad.yaml:6: arms.a.backbone: unknown backbone" in err


def test_validate_says_a_generated_dataset_was_not_checked(write_study, capsys) -> None:  # type: ignore[no-untyped-def]
    """The phantom is generated when a run starts: validate cannot check its data and must not say it did."""
    assert main(["validate", str(write_study())]) == 0
    out = capsys.readouterr().out
    assert "data not checked: dataset 'phantom' is generated when a run starts" in out
    assert "data checked)" not in out and "data checked by harness run)" in out


def test_validate_says_an_unnamed_attention_mapping_got_the_default(write_study, capsys) -> None:  # type: ignore[no-untyped-def]
    """Old code: `attention: {reduction: 4}` said only "attention variant 'none': no option 'reduction'", naming a
    variant the study never wrote."""
    study = write_study(arms={"plain": {"backbone": "resnet20", "attention": "none"},
                              "se": {"backbone": "resnet20", "attention": {"reduction": 4}}})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "arms.se.attention.reduction: attention variant 'none': no option 'reduction'" in err
    assert "attention names no variant, so it is the default 'none': name one" in err
    named = write_study(arms={"plain": {"backbone": "resnet20", "attention": {"name": "none", "reduction": 4}}})
    assert main(["validate", str(named)]) == 2
    assert "names no variant" not in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="device auto resolves to the GPU here")
def test_cuda_graph_off_cuda_is_refused_by_validate_before_a_run_touches_its_folder(write_study, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                                   capsys) -> None:
    """Old code: validate said OK, and run refused only after it had removed the run's results.csv, stats.json,
    run.json and report and rewritten study.yaml with the refused setting."""
    study, out = write_study({"training": {"epochs": 1}}, arms={"plain": {"backbone": "resnet20"}}), tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet"]) == 0
    before = {name: (out / name).read_bytes() for name in ("results.csv", "run.json", "study.yaml", "report.html")}
    graphed = ["--set", "training.cuda_graph=true"]
    assert main(["validate", str(study), *graphed]) == 2
    assert "arms.plain: training.cuda_graph: true needs a CUDA device" in capsys.readouterr().err
    assert main(["run", str(study), "--out", str(out), "--quiet", *graphed]) == 2
    assert {name: (out / name).read_bytes() for name in before} == before


def test_a_problem_of_the_shared_training_is_said_once(write_study, capsys) -> None:  # type: ignore[no-untyped-def]
    """Old code: batch_size 1 with two arms of one backbone said the same line twice ("2 problem(s)")."""
    assert main(["validate", str(write_study({"training": {"batch_size": 1}}))]) == 2
    err = capsys.readouterr().err
    assert "1 problem(s)" in err and err.count("batch_size 1 cannot train resnet20") == 1
