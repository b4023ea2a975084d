"""Where trials live: an Optuna storage with heartbeats (SQLite in the run directory by default, any
RDB URL or a journal file shared by many workers); dead workers' trials are failed and re-run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.rundir import RunDir

HEARTBEAT_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_INTERVAL", "10"))  # seconds between worker heartbeats
GRACE_SECONDS = int(os.environ.get("HARNESS_HEARTBEAT_GRACE", "30"))  # silence after which a worker counts as dead


def storage_for(url: str | None, run_dir: Path) -> Any:
    """An Optuna storage with heartbeats (so dead workers' trials are re-run): RDB URL or journal file."""
    import warnings

    import optuna
    from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = url or RunDir(run_dir).tuning_url()
    run_dir.mkdir(parents=True, exist_ok=True)
    retry = RetryHeartbeatStaleTrialCallback(max_retry=3)
    if url.startswith("journal:"):
        journal = Path(url.removeprefix("journal:")).expanduser()
        if not journal.parent.is_dir() or journal.is_dir():
            raise HarnessError(f"storage {url!r}: {journal} is not a file in an existing folder; "
                               "use journal:/existing/folder/tuning.log")
        try:
            return JournalStorage(JournalFileBackend(str(journal)))
        except OSError as exc:
            raise HarnessError(f"storage {url!r}: cannot open {journal}: {exc.strerror}") from None
    url = with_postgres_driver(url)
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}  # several local workers wait for the file lock instead of failing
    try:
        return RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                          heartbeat_stale_trial_callback=retry, engine_kwargs=engine)
    except (ImportError, ModuleNotFoundError) as exc:
        hint = "pip install 'ablation-harness[postgres]'" if url.startswith("postgresql") else "install its driver"
        raise HarnessError(f"storage {url!r} needs a database driver: {exc} ({hint})") from None
    except optuna.exceptions.StorageInternalError as exc:
        raise HarnessError(f"cannot open storage {url!r}: {exc}") from None
    except Exception as exc:  # sqlalchemy's URL/connection errors
        raise HarnessError(f"cannot open storage {url!r}: {type(exc).__name__}: {exc}") from None


def with_postgres_driver(url: str) -> str:
    """``postgresql://`` with the driver that is installed: SQLAlchemy 2.1 defaults to psycopg 3, while the
    ``postgres`` extra (and many systems) provide psycopg2. An explicit ``postgresql+driver://`` is kept."""
    import importlib.util

    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    raise HarnessError(f"storage {url!r} needs a PostgreSQL driver: pip install 'ablation-harness[postgres]' "
                       "(psycopg2-binary) or psycopg[binary]")
