"""The run directory never eats user files: --out/--fresh touch only what the harness wrote (issue 26.3),
a run that fails before its first cell leaves nothing behind (25.5)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from harness.cli.main import main
from harness.errors import HarnessError
from harness.rundir import MANIFEST, RunDir


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _users_folder(folder: Path, study: Path) -> Path:
    """A folder of the user's full of names the harness also writes."""
    folder.mkdir()
    (folder / "datasets" / "ultrasound").mkdir(parents=True)
    (folder / "datasets" / "ultrasound" / "a.png").write_bytes(b"not really a png")
    (folder / "tensorboard" / "exp1").mkdir(parents=True)
    (folder / "tensorboard" / "exp1" / "events.out").write_bytes(b"events")
    for name in ("labels.csv", "splits.csv", "run.log", ".notes.tmp", ".results.csv.abcdefgh.tmp"):
        (folder / name).write_text(f"mine: {name}\n")
    (folder / "study.yaml").write_text("# my hand-written study, comments and all\n" + study.read_text())
    return folder


@pytest.mark.parametrize("extra", [[], ["--fresh"], ["--fresh", "--workers", "2"]])
def test_out_on_a_users_folder_is_refused_and_every_file_survives(
        write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:  # type: ignore[no-untyped-def]
    folder = _users_folder(tmp_path / "mine", write_study())
    before = _snapshot(folder)
    code = main(["run", str(folder / "study.yaml"), "--out", str(folder), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{folder} is not empty and is not a harness run directory" in err and "empty or new folder" in err
    assert "Traceback" not in err
    assert _snapshot(folder) == before  # not one file removed, changed or added (no manifest either)


def test_a_new_folder_is_claimed_and_fresh_removes_only_the_harness_names(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.prepare()
    assert (run / MANIFEST).is_file() and "results.csv" in run.owned() and "notes.txt" not in run.owned()
    for name in ("results.csv", "report.html", "notes.txt"):
        (run / name).write_text("x")
    (run / "my_analysis").mkdir()
    (run / "my_analysis" / ".draft.abcdefgh.tmp").write_text("kept: not a folder the harness writes")
    (run / ".results.csv.abcdefgh.tmp").write_text("a killed write")
    (run / ".results.csv.abc.tmp").write_text("kept: not the name mkstemp makes")
    (run / ".mydata.csv.abcdefgh.tmp").write_text("kept: not a name the harness writes")
    run.clear()
    assert sorted(p.name for p in run.root.iterdir()) == [".harness-run.json", ".mydata.csv.abcdefgh.tmp",
                                                          ".results.csv.abc.tmp", "my_analysis", "notes.txt"]
    assert (run / "my_analysis" / ".draft.abcdefgh.tmp").exists()


def test_an_older_harness_run_directory_is_adopted_but_not_one_with_foreign_files(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "cells" / "a" / "r0-f0").mkdir(parents=True)
    for name in ("study.yaml", "results.csv", "run.json", ".stats.json.abcdefgh.tmp"):
        (old / name).write_text("x")
    with pytest.raises(HarnessError, match="not a harness run directory"):  # harness names, no harness evidence
        RunDir(old).prepare()
    (old / "cells" / "a" / "r0-f0" / "fingerprint").write_text("abc")
    RunDir(old).prepare()  # only harness names and a cell fingerprint: an older run directory
    assert (old / MANIFEST).exists()
    RunDir(old).clear()
    assert sorted(p.name for p in old.iterdir()) == [MANIFEST]

    mixed = tmp_path / "mixed"
    (mixed / "cells" / "a" / "r0-f0").mkdir(parents=True)
    (mixed / "cells" / "a" / "r0-f0" / "fingerprint").write_text("abc")
    (mixed / "run.json").write_text('{"harness_version": "0.1"}')
    (mixed / "thesis.docx").write_text("mine")
    with pytest.raises(HarnessError, match=r"it holds thesis\.docx\).*empty or new folder"):
        RunDir(mixed).clear()
    assert sorted(p.name for p in mixed.iterdir()) == ["cells", "run.json", "thesis.docx"]


def test_the_study_file_being_run_is_never_overwritten(write_study, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    RunDir(out).prepare()
    own = out / "study.yaml"
    own.write_text("# edited by hand\n" + write_study().read_text())
    before = own.read_bytes()
    assert main(["run", str(own), "--out", str(out), "--quiet"]) == 2
    assert "is the run directory's own study.yaml" in capsys.readouterr().err
    assert own.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [MANIFEST, "study.yaml"]


def test_a_run_that_fails_before_its_first_cell_leaves_nothing_behind(write_study, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str], builtin_registry) -> None:  # type: ignore[no-untyped-def]
    images = tmp_path / "images"
    for label in ("a", "b"):
        (images / label).mkdir(parents=True)
        (images / label / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # every image undecodable
    study = write_study()
    spec = yaml.safe_load(study.read_text())
    spec["dataset"] = {"name": "folder", "image_size": 32, "options": {"path": str(images)}}
    study.write_text(yaml.safe_dump(spec))
    out = tmp_path / "new" / "run"
    from harness.run.runner import RunOptions, run_study
    from harness.study.loader import load_study

    with pytest.raises(HarnessError):
        run_study(load_study(study), builtin_registry, RunOptions(out, quiet=True))
    assert not (tmp_path / "new").exists()  # the folders it created are gone, its own and the parent

    spec["datasets"] = [{"id": "broken", **spec.pop("dataset")}]  # the same, as a multi-dataset study
    study.write_text(yaml.safe_dump(spec))
    assert main(["run", str(study), "--out", str(out), "--quiet"]) == 2
    assert "could not be read" in capsys.readouterr().err and not (tmp_path / "new").exists()

    spec["dataset"] = spec.pop("datasets")[0]
    spec["dataset"].pop("id")
    study.write_text(yaml.safe_dump(spec))
    kept = tmp_path / "kept"
    RunDir(kept).prepare()
    (kept / "notes.txt").write_text("mine")
    with pytest.raises(HarnessError):
        run_study(load_study(study), builtin_registry, RunOptions(kept, quiet=True))
    assert (kept / "notes.txt").read_text() == "mine"  # a folder it did not create is kept


def test_copying_a_run_directory_keeps_it_a_run_directory(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "a")
    run.prepare()
    (run / "results.csv").write_text("x")
    shutil.copytree(run.root, tmp_path / "b")
    RunDir(tmp_path / "b").clear()
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [MANIFEST]


def test_undoing_a_created_run_directory_keeps_what_others_put_beside_it(tmp_path: Path) -> None:
    from harness.rundir import first_missing, remove_created

    run = tmp_path / "a" / "b" / "run"
    assert first_missing(run) == tmp_path / "a"
    (run / "cells").mkdir(parents=True)
    (tmp_path / "a" / "other-trial").mkdir()  # e.g. a concurrent tune worker's trial
    remove_created(run, tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["other-trial"]
