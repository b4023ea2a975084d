"""The documented ``--storage postgresql://...`` (docs/guide/tuning.md) works as written with the ``postgres`` extra (psycopg2),
though SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3. Against a real server when one is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna
import pytest

from harness.errors import HarnessError
from harness.run.storage import storage_for, with_postgres_driver


def test_documented_url_works_against_a_real_server(postgres_url: str, tmp_path: Path) -> None:
    url = postgres_url.replace("postgresql+psycopg2://", "postgresql://")  # as the docs write it (guide/tuning.md)
    storage = storage_for(url, tmp_path)
    study = optuna.create_study(storage=storage, study_name="readme-url", load_if_exists=True)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1) ** 2, n_trials=2)
    assert len(optuna.load_study(study_name="readme-url", storage=storage).trials) >= 2


def test_explicit_driver_is_kept() -> None:
    assert with_postgres_driver("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert with_postgres_driver("sqlite:///x.db") == "sqlite:///x.db"


def test_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(HarnessError, match=r"pip install 'ablation-harness\[postgres\]'"):
        with_postgres_driver("postgresql://u@h/db")
