"""Studies over several datasets (``datasets:``): one ordinary study per entry, problems with the dataset's id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.cli.main import main
from harness.errors import StudyError
from harness.study.multi import declares_datasets, load_multi

PHANTOM: dict[str, Any] = {"name": "phantom", "image_size": 16, "options": {"classes": 2, "per_class": 8, "size": 16}}


def test_each_entry_is_an_ordinary_study_with_its_own_cv(tmp_path: Path, multi_study) -> None:
    hard = {**PHANTOM, "id": "hard", "options": {**PHANTOM["options"], "difficulty": 0.8}, "cv": {"folds": 3}}
    path = multi_study([{**PHANTOM, "id": "easy"}, hard])
    assert declares_datasets(path)
    multi = load_multi(path, ["training.epochs=1"])
    assert list(multi.datasets) == ["easy", "hard"]
    easy, difficult = multi.datasets["easy"].spec, multi.datasets["hard"].spec
    assert (easy.cv.folds, difficult.cv.folds, difficult.cv.repeats) == (2, 3, 1)  # the entry's cv overrides the study's
    assert difficult.dataset.options["difficulty"] == 0.8 and "difficulty" not in easy.dataset.options
    assert easy.seed == difficult.seed == 0 and easy.name == "tiny.easy"  # the same seeds on every dataset
    assert multi.datasets["hard"].arms["se"].training.epochs == 1  # --set applies to every dataset
    assert multi.datasets["hard"].line_of(("dataset", "options")) is not None


@pytest.mark.parametrize(("entries", "top", "expected"), [
    ([{**PHANTOM, "id": "a"}, {**PHANTOM, "id": "a"}], {}, "dataset id 'a' is used 2 times"),
    ([{**PHANTOM, "id": "a"}], {"dataset": PHANTOM}, "either dataset: (one) or datasets:"),
    ([], {}, "non-empty list"),
    ([{**PHANTOM}], {}, "datasets[0].id: required field is missing"),
    ([{**PHANTOM, "id": "a"}, {**PHANTOM, "id": "b", "cv": {"foldz": 2}}], {}, "datasets[b].cv.foldz: unknown key"),
    ([{**PHANTOM, "id": "a"}, {**PHANTOM, "id": "b", "image_size": 2}], {}, "datasets[b].image_size"),
])
def test_mistakes_name_the_dataset(tmp_path: Path, entries: list[dict[str, Any]], top: dict[str, Any],
                                   expected: str, multi_study) -> None:
    with pytest.raises(StudyError) as caught:
        load_multi(multi_study(entries, **top))
    assert expected in str(caught.value)


def test_validate_checks_every_dataset_and_reports_study_wide_problems_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], multi_study) -> None:
    bad = {**PHANTOM, "id": "b", "options": {**PHANTOM["options"], "bogus": 1}}
    path = multi_study([{**PHANTOM, "id": "a"}, bad],
                  arms={"plain": {"backbone": "resnet20"}, "se": {"backbone": "resnet20", "attention": "sse"}})
    assert main(["validate", str(path)]) == 2  # the dataset's options are checked with its data
    err = capsys.readouterr().err
    assert "datasets[b].options.bogus: dataset 'phantom': no option 'bogus'" in err and "datasets[a]" not in err
    assert err.count("unknown attention variant 'sse'") == 1  # the same for every dataset: once, unprefixed
    good = multi_study([{**PHANTOM, "id": "a"}, {**PHANTOM, "id": "b"}])
    assert main(["validate", str(good)]) == 0
    assert "2 datasets: a, b" in capsys.readouterr().out


def test_tune_and_plan_refuse_several_datasets_with_a_way_out(tmp_path: Path, capsys: pytest.CaptureFixture[str], multi_study) -> None:
    path = multi_study([{**PHANTOM, "id": "a"}, {**PHANTOM, "id": "b"}])
    assert main(["tune", str(path), "--out", str(tmp_path / "t")]) == 2
    assert "tuning runs on one" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "study.yaml").write_text(path.read_text())
    assert main(["plan", str(run), "--effect", "0.01"]) == 2
    assert "datasets/<id>" in capsys.readouterr().err


def test_set_reaches_one_dataset_by_id_or_index(tmp_path: Path, multi_study) -> None:
    # both entries share PHANTOM's options dict, which safe_dump writes once as a YAML alias: --set changes one
    path = multi_study([{**PHANTOM, "id": "easy"}, {**PHANTOM, "id": "hard"}])
    multi = load_multi(path, ["datasets.hard.options.per_class=4", "datasets[0].image_size=24"])
    assert multi.datasets["hard"].spec.dataset.options["per_class"] == 4
    assert multi.datasets["easy"].spec.dataset.options["per_class"] == 8
    assert multi.datasets["easy"].spec.dataset.image_size == 24 and multi.datasets["hard"].spec.dataset.image_size == 16
    with pytest.raises(StudyError) as caught:
        load_multi(path, ["datasets.medium.options.per_class=4"])
    assert "datasets has no entry 'medium' (an index 0..1 or an id: easy, hard)" in str(caught.value)
