"""Getting real data in (issue 16): validate checks the data, folder grouping, frame-name warning,
predefined folds, and the run's data summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from harness.cli.main import main
from harness.data.describe import frame_name_warning

RNG = np.random.default_rng(0)


def _image(path: Path, label: int, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    base = RNG.integers(0, 60, (size, size)).astype(np.uint8)
    base[:, : size // 2] += 120 if label else 0
    Image.fromarray(base, mode="L").save(path)


def _videos(root: Path, videos: int = 8, frames: int = 3) -> None:
    """A lung-ultrasound-like folder: class sub-folders, several numbered frames per video."""
    for v in range(videos):
        label = v % 2
        for f in range(frames):
            _image(root / ("b-lines" if label else "a-lines") / f"vid{v:02d}_frame{f}.png", label)


def _study(tmp_path: Path, dataset: dict, cv: dict | None = None, name: str = "study.yaml") -> Path:
    study = {"name": "data", "seed": 0, "dataset": {"image_size": 16, **dataset},
             "cv": {"folds": 2, **(cv or {})},
             "training": {"epochs": 1, "batch_size": 8, "threads": 1},
             "arms": {"plain": {"backbone": "resnet20"}}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_validate_reports_every_data_problem_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown option, missing folder, missing column: all caught by validate, not only by run."""
    study = _study(tmp_path, {"name": "folder", "options": {"root": "nowhere"}})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "dataset.options.root: dataset 'folder': no option 'root'; options: path, group_pattern" in err
    assert "dataset.options.path: dataset 'folder': required option 'path' is missing" in err
    assert "study.yaml:" in err  # with a line number

    _videos(tmp_path / "lus")
    study = _study(tmp_path, {"name": "folder", "options": {"path": str(tmp_path / "missing")}})
    assert main(["validate", str(study)]) == 2
    assert "missing does not exist; check dataset.options.path" in capsys.readouterr().err

    study = _study(tmp_path, {"name": "folder", "options": {"path": "lus"}}, {"group": "video", "folds": 9})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "cv.group: the dataset has no column 'video'" in err and "group_pattern" in err


def test_validate_checks_csv_columns_paths_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["Image_path,Plane,Patient_num"]
    for i in range(10):
        if i != 3:  # row 5 names a file that is not there
            _image(tmp_path / f"{i}.png", i % 2)
        lines.append(f"{i}.png,{'ab'[i % 2] if i < 9 else 'c'},{i // 4}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    study = _study(tmp_path, {"name": "csv", "options": {"path": "labels.csv"}}, {"group": "patient", "folds": 3})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "1 image file(s) do not exist" in err and "3.png (row 5)" in err
    assert "cv.group: the dataset has no column 'patient'" in err
    # with the right column, the counts against k are each reported
    study = _study(tmp_path, {"name": "csv", "options": {"path": "labels.csv"}}, {"group": "Patient_num", "folds": 4})
    assert main(["validate", str(study)]) == 2
    err = capsys.readouterr().err
    assert "cv.folds: 'c' has 1 image(s), fewer than cv.folds = 4" in err
    assert "cv.group: 3 distinct group(s), fewer than cv.folds = 4" in err


def test_validate_ok_prints_the_data_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _videos(tmp_path / "lus")
    study = _study(tmp_path, {"name": "folder", "options": {"path": "lus", "group_pattern": r"^(vid\d+)_"}})
    assert main(["validate", str(study)]) == 0
    out = capsys.readouterr().out
    assert "classes: a-lines 12, b-lines 12" in out and "groups: 8; per class: a-lines 4, b-lines 4" in out
    assert "repeat 0 fold 1: train" in out and "data checked" in out


def test_folder_group_pattern_keeps_frames_of_a_video_together(tmp_path: Path) -> None:
    _videos(tmp_path / "lus")
    study = _study(tmp_path, {"name": "folder", "options": {"path": "lus", "group_pattern": r"^(vid\d+)_frame"}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    splits = pd.read_csv(out / "splits.csv")
    assert set(splits.group) == {f"vid{v:02d}" for v in range(8)}
    for _, part in splits.groupby(["repeat", "fold"]):
        assert not set(part.group[part.role == "train"]) & set(part.group[part.role == "val"])
    summary = json.loads((out / "data_summary.json").read_text())
    assert summary["class_counts"] == [12, 12] and summary["groups_per_class"] == [4, 4]
    assert [sum(f["val"]) for f in summary["folds"]] == [12, 12]


def test_ungrouped_frames_are_warned_about(tmp_path: Path) -> None:
    _videos(tmp_path / "lus")
    study = _study(tmp_path, {"name": "folder", "options": {"path": "lus"}})
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="look like numbered frames/slices of 8 sources"):
        assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    notes = json.loads((out / "run.json").read_text())["data_notes"]
    assert any("group_pattern" in n for n in notes)


@pytest.mark.parametrize("names,n_classes,flagged", [
    ([f"vid{v}_frame{f}.png" for v in range(5) for f in range(4)], 2, True),
    ([f"scan{v}-slice_{f}.dcm.png" for v in range(5) for f in range(4)], 2, True),
    ([f"patient{v}_{f}.jpg" for v in range(6) for f in range(3)], 3, True),
    ([f"IMG_{i:04d}.jpg" for i in range(20)], 2, False),  # camera numbering: one prefix
    ([f"{'cat' if i % 2 else 'dog'}.{i}.jpg" for i in range(20)], 2, False),  # one prefix per class
    ([f"case{i}.png" for i in range(20)], 2, False),  # every name its own source ("case" shared is one prefix)
    ([f"{w}.png" for w in "abcdefghij"], 2, False),  # no numbers
    ([f"{i}.png" for i in range(100)], 2, False),  # plain numbers are not frames of sources "1".."9"
    ([f"{v}_{f}.png" for v in range(10, 16) for f in range(3)], 2, True),  # numeric video ids, set off
])
def test_frame_name_detection(names: list[str], n_classes: int, flagged: bool) -> None:
    assert (frame_name_warning(names, n_classes) is not None) is flagged


def test_fold_column_gives_the_published_folds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["Image_path,label,official_fold"]
    for i in range(18):
        _image(tmp_path / f"{i}.png", i % 2)
        lines.append(f"{i}.png,{i % 2},{'ABC'[i % 3]}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    study = _study(tmp_path, {"name": "csv", "options": {"path": "labels.csv"}}, {"fold_column": "official_fold"})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 2  # cv.folds: 2 disagrees
    assert "cv.folds is 2 but column 'official_fold' has 3 folds" in capsys.readouterr().err
    raw = yaml.safe_load(study.read_text())
    del raw["cv"]["folds"]
    study.write_text(yaml.safe_dump(raw))
    results = pd.read_csv(out / "results.csv") if main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0 else None
    assert results is not None and len(results) == 3
    splits = pd.read_csv(out / "splits.csv")
    for fold, letter in enumerate("ABC"):
        val = splits[(splits.fold == fold) & (splits.role == "val")].sample_id
        assert sorted(val) == sorted(f"{i}.png" for i in range(18) if "ABC"[i % 3] == letter)
    study = _study(tmp_path, {"name": "csv", "options": {"path": "labels.csv"}}, {"fold_column": "fold"}, "bad.yaml")
    assert main(["validate", str(study)]) == 2
    assert "cv.fold_column: the dataset has no column 'fold'" in capsys.readouterr().err


def test_default_threads_follow_the_cores_this_process_may_use() -> None:
    """Pinned to one core, the default is 1 thread (not os.cpu_count()); split between local workers."""
    import subprocess
    import sys

    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from harness.run.threads import default_threads; print(default_threads(), default_threads(4))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1", "1"]
    import os

    from harness.run.threads import default_threads
    assert default_threads(1) == len(os.sched_getaffinity(0))
    assert default_threads(len(os.sched_getaffinity(0)) * 2) == 1


def test_threads_flag_on_run_is_used_and_recorded(tmp_path: Path, write_study) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"threads": None, "epochs": 1}}, arms={"plain": {"backbone": "resnet20"}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report", "--threads", "1"]) == 0
    assert json.loads((out / "run.json").read_text())["threads"] == 1
    assert main(["bench", "--threads", "0"]) == 2


def test_docs_list_every_dataset_option_from_the_option_models(capsys: pytest.CaptureFixture[str], docs_generator) -> None:  # type: ignore[no-untyped-def]
    """The docs' dataset table (generated) is `harness list datasets --options`, which is generated from the models."""
    from harness_plugins.datasets import options as dataset_options

    table = docs_generator.options_tables()["datasets"]
    assert main(["list", "datasets", "--options"]) == 0
    assert table == capsys.readouterr().out.strip()
    for model in (dataset_options.CsvOptions, dataset_options.FolderOptions, dataset_options.FilenameOptions,
                  dataset_options.PhantomOptions):
        for option in model.model_fields:
            assert f"| `{option}` |" in table
    guide = (Path(__file__).parents[2] / "docs" / "guide" / "datasets.md").read_text()
    assert "cv.group" in guide and "group_column" not in guide  # grouping is described one way (cv.group)


def test_tune_workers_split_the_threads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, write_study) -> None:  # type: ignore[no-untyped-def]
    """`tune --workers N` gives each worker process (and this one) cores / N threads unless the study sets them."""
    from harness.cli import main as cli
    from harness.errors import HarnessError
    from harness.run.threads import default_threads

    spawned: list[tuple[tuple[str, ...], int | None]] = []

    def spawn(command: str, plan, *rest):  # type: ignore[no-untyped-def]
        spawned.append((plan.overrides, plan.first.spec.training.threads))
        raise HarnessError("stop before tuning")

    monkeypatch.setattr(cli, "spawn_workers", spawn)
    for threads, out in ((None, "a"), (3, "b")):
        study = write_study({"training": {"threads": threads, "epochs": 1}}, arms={"plain": {"backbone": "resnet20"}})
        assert main(["tune", str(study), "--out", str(tmp_path / out), "--workers", "2", "--trials", "1"]) == 2
    assert spawned == [((f"training.threads={default_threads(2)}",), default_threads(2)),
                       ((), 3)]  # the study's own training.threads wins
