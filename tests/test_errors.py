"""The error types: a problem prints as FILE:LINE: field.path: message; unknown names get close matches."""

from __future__ import annotations

from harness.errors import HarnessError, Problem, StudyError, did_you_mean, unknown_name


def test_study_error_lists_every_problem_with_file_line_and_field() -> None:
    error = StudyError([Problem("study.yaml", 7, "training.lr", "must be > 0"), Problem("study.yaml", None, "", "empty")])
    assert isinstance(error, HarnessError)
    assert str(error) == "study.yaml:7: training.lr: must be > 0\nstudy.yaml: <top>: empty"


def test_unknown_name_suggests_close_matches_and_lists_the_known() -> None:
    assert did_you_mean("resnet2O", ["resnet20", "resnet18", "vit"]) == " (did you mean 'resnet20', 'resnet18'?)"
    assert did_you_mean("xyz", ["resnet20"]) == ""
    assert unknown_name("backbone", "resnt18", ["vit", "resnet18"]) == (
        "unknown backbone 'resnt18' (did you mean 'resnet18'?); known: resnet18, vit")
    assert unknown_name("logger", "tb", []) == "unknown logger 'tb'; known: none"
