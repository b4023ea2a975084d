"""Atomic file writes: temp file in the same folder, fsync, rename. A crash never leaves half a file."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from harness.errors import HarnessError


def atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    """Call ``write(stream)`` on a temp file next to ``path``, then atomically replace ``path``; the stream
    has ``write``/``flush``/``tell`` only (so a full disk keeps its errno)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a shared run directory follows the umask
        with os.fdopen(fd, "wb") as handle:
            write(_Stream(handle))  # not a real file: numpy writes through Python, so ENOSPC keeps its errno
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise HarnessError(f"disk full while writing {path}; the previous version is intact") from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


TEMP_SUFFIX = ".tmp"
# what mkstemp makes of prefix ".<name>." and the suffix: eight characters of tempfile's alphabet in between
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")


def temp_target(file_name: str) -> str | None:
    """The file an atomic write was writing when ``file_name`` is one of its temp files, else None."""
    match = _TEMP_NAME.fullmatch(file_name)
    return match["name"] if match else None


def remove_temp_leftovers(folder: Path, targets: frozenset[str] | None = None) -> int:
    """Delete the temp files a killed atomic write left in ``folder`` (not below it), only those of
    ``targets`` (every target when None); how many there were. Nothing else is touched."""
    removed = 0
    if not Path(folder).is_dir():
        return removed
    for path in Path(folder).iterdir():
        target = temp_target(path.name)
        if target is not None and (targets is None or target in targets) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask


class _Stream:
    """A binary file seen only through ``write``/``flush``/``tell`` (``ndarray.tofile`` would hide the errno)."""

    def __init__(self, handle: IO[bytes]):
        self._handle = handle

    def write(self, data: Any) -> int:
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()

    def tell(self) -> int:
        return self._handle.tell()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes | memoryview) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` to memory first: torch's writer turns a full disk into an unexplained RuntimeError."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getbuffer())  # no copy of a large checkpoint
