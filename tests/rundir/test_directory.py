"""RunDir: claiming a folder, clearing only what the manifest lists, the layouts, the shared cache of settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import rundir as files
from harness.errors import HarnessError
from harness.rundir import RunDir


def test_a_folder_of_the_users_is_refused_and_an_empty_one_claimed(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(HarnessError, match="not a harness run directory .*notes.txt"):
        RunDir(mine).prepare()
    run = RunDir(tmp_path / "run")
    run.prepare()
    assert set(run.owned()) == set(files.HARNESS_NAMES)


def test_clear_removes_the_harness_outputs_only_and_keeps_a_plugins_store(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.prepare()
    for name in (files.RESULTS, files.STATS):
        (run.root / name).write_text("x")
    store = run.plugin_dir("mlflow") / "mlruns"
    store.mkdir(parents=True)
    (store / "meta.yaml").write_text("kept")
    (run.plugin_dir("tensorboard")).mkdir()
    (run.root / files.CACHE).mkdir()
    run.clear(keep=[f"{files.PLUGINS}/mlflow/mlruns"])
    assert not (run.root / files.RESULTS).exists() and not (run.root / files.STATS).exists()
    assert (store / "meta.yaml").read_text() == "kept" and not run.plugin_dir("tensorboard").exists()
    assert (run.root / files.CACHE).is_dir()  # the decoded-image cache is keyed by content: kept


def test_the_other_layout_is_refused_and_settings_share_one_cache(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    run.prepare()
    (run.root / files.RESULTS).write_text("arm\n")
    with pytest.raises(HarnessError, match="holds a single run .*--fresh"):
        run.refuse_other_layout(files.SETTINGS)
    run.refuse_other_layout(None)
    (run.root / files.STUDY).write_text(yaml.safe_dump({"settings": [{"id": "a"}, {"id": "b"}]}))
    assert list(run.setting_runs()) == ["a", "b"] and run.dataset_runs() == {}
    setting = RunDir(run.sub_run(files.SETTINGS, "a"))
    assert setting.cache() == run.cache() == run.root / files.CACHE
