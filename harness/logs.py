"""Where the harness's words go: diagnostics through :mod:`logging` to stderr (and to ``run.log`` in the
run directory), results on stdout; progress bars only on a terminal, plain lines otherwise.

``harness`` is the logger; ``--quiet`` shows warnings and errors only, ``--verbose`` adds debug lines.
``run.log`` always receives info and above, whatever the console shows.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO, TypeVar

LOGGER = "harness"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # run.log; the console shows the bare message
T = TypeVar("T")

log = logging.getLogger(LOGGER)


def stderr_is_terminal() -> bool:
    """True when stderr is an interactive terminal (progress bars are drawn only there)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


class _ConsoleHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (tests replace it), above any progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "from_warning", False):  # Python already showed it on stderr
            return
        try:
            message = self.format(record)
            if stderr_is_terminal():
                from tqdm import tqdm

                tqdm.write(message, file=sys.stderr)
            else:
                sys.stderr.write(message + "\n")
                sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never break a run
            self.handleError(record)


def verbosity_level(quiet: bool = False, verbose: int = 0) -> int:
    """The console's logging level for ``--quiet`` / ``--verbose``."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose else logging.INFO


@contextlib.contextmanager
def console(level: int = logging.INFO) -> Iterator[None]:
    """Log to stderr at ``level`` while the block runs; ``warnings.warn`` messages reach run.log as well.

    Warnings are chained, not captured (``logging.captureWarnings`` would hide them from whoever
    records them, e.g. ``pytest.warns``): Python shows them on stderr as usual, and a copy is logged.
    """
    logger = logging.getLogger(LOGGER)
    handler = _ConsoleHandler(level)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous = logger.level, logger.propagate, warnings.showwarning
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # one copy of each line, whatever the root logger does
    logger.addHandler(handler)

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        logger.warning("%s: %s", category.__name__, message, extra={"from_warning": True})
        previous[2](message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous[2]
        logger.removeHandler(handler)
        logger.setLevel(previous[0])
        logger.propagate = previous[1]


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Append the harness's log lines (info and above, and warnings) to ``path`` while the block runs."""
    logger = logging.getLogger(LOGGER)
    target = str(Path(path).resolve())
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == target for h in logger.handlers):
        yield  # already logging there (a tuning trial inside a logged run)
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(target, mode="a", encoding="utf-8", delay=True)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FORMAT))
    previous = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()


class Progress:
    """A tqdm bar on a terminal; elsewhere one plain log line per finished item (no carriage returns).

    ``bar=False`` draws nothing off a terminal (e.g. epochs inside a cell: only debug lines).
    """

    def __init__(self, total: int, desc: str, unit: str, *, quiet: bool = False, plain: bool = True,
                 leave: bool = True, position: int = 0):
        self.total, self.unit, self.plain, self.done = total, unit, plain and not quiet, 0
        self.bar: Any = None
        if not quiet and stderr_is_terminal():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, leave=leave, position=position, file=sys.stderr)

    def describe(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description(text)

    def update(self, done: int | None = None, note: str = "", **postfix: str) -> None:
        """Mark progress (``done`` = absolute count, else one more); off a terminal, log ``note``."""
        self.done = self.done + 1 if done is None else done
        if self.bar is not None:
            self.bar.n = self.done
            if postfix:
                self.bar.set_postfix(**postfix)
            self.bar.refresh()
        elif self.plain:
            extra = " ".join(f"{k} {v}" for k, v in postfix.items())
            log.info(f"{self.unit} {self.done}/{self.total} done" + (f": {note}" if note else "")
                     + (f" ({extra})" if extra else ""))
        else:
            log.debug(f"{self.unit} {self.done}/{self.total}: {note} {postfix}".rstrip())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(items: Iterable[T], total: int, desc: str, unit: str, *, quiet: bool = False) -> Iterator[T]:
    """Iterate ``items`` with a :class:`Progress` that counts each item once it is finished."""
    with Progress(total, desc, unit, quiet=quiet) as bar:
        for item in items:
            yield item
            bar.update()
