"""CLI behaviour that is cheap to check: flags, --fresh in every mode, the run-directory lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import HarnessError
from harness.rundir import RunDir


def _cell_results(out: Path) -> dict[str, float]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.glob("cells/*/*/result.json"))}


def test_workers_fresh_recomputes_every_cell(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"epochs": 1}, "dataset": {"image_size": 16, "options": {"size": 16}}})
    out = tmp_path / "run"
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    before = _cell_results(out)
    (out / "tuning.json").write_text("{}")  # a stale output of an earlier session
    assert len(before) == 4
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report", "--workers", "2", "--fresh"]) == 0
    after = _cell_results(out)
    assert after.keys() == before.keys()
    assert all(after[k] != before[k] for k in before), "every cell must be trained again"
    assert not (out / "tuning.json").exists()


def test_global_flag_after_the_subcommand(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    study = write_study()
    assert main(["validate", str(study), "--strict-plugins"]) == 0
    assert main(["--strict-plugins", "validate", str(study)]) == 0


@pytest.mark.parametrize("backend", ["fcntl", "filelock"])
def test_run_dir_lock_is_exclusive_against_workers_and_shared_between_them(
        tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both lock backends: fcntl on POSIX, filelock's reader/writer lock where fcntl is missing (Windows)."""
    from harness.rundir import directory as rundir

    monkeypatch.setattr(rundir, "_posix_locks", lambda: backend == "fcntl")
    run = RunDir(tmp_path / "run")
    with run.lock(shared=True), run.lock(shared=True):
        with pytest.raises(HarnessError, match=r"in use by another harness process \(a run or its workers\)"), run.lock():
            pass
    with run.lock(), pytest.raises(HarnessError, match=r"in use by another harness process \(a plain harness run\)"), run.lock(shared=True):
        pass
    with run.lock():  # released on exit: taken again
        pass
    assert (tmp_path / "run" / (rundir.LOCK if backend == "fcntl" else rundir.LOCK_DB)).exists()


def test_fresh_clears_every_output_and_temp_leftovers(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.prepare()  # a run directory: the harness's manifest
    for name in ("results.csv", "skipped_images.csv", "tuning.json", "arms.json", "stats.json"):
        (tmp_path / name).write_text("old")
    cell = run.cell("a", 0, 0)
    cell.mkdir(parents=True)
    (cell / ".last.pt.abc123_x.tmp").write_bytes(b"half")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "images.npy").write_bytes(b"kept")
    run.clear()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".harness-run.json", "cache"]
    (tmp_path / ".results.csv.x1yz0abc.tmp").write_text("half")
    (cell.parent / "r0-f1").mkdir(parents=True)
    (cell.parent / "r0-f1" / ".best.pt.0a1b2c3d.tmp").write_text("half")
    assert run.remove_temp_files() == 2
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [".harness-run.json", "images.npy"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    import os

    from harness.atomic import atomic_write_text

    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "results.csv", "a,b\n")
    finally:
        os.umask(previous)
    assert (tmp_path / "results.csv").stat().st_mode & 0o777 == mode


def test_list_with_no_match_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "attention", "sq*"]) == 2
    assert "no attention match 'sq*'; known: " in capsys.readouterr().err
    assert main(["list", "attention", "s*"]) == 0 and capsys.readouterr().out.startswith("se ")
