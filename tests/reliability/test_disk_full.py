"""Disk full while writing checkpoints, the decode cache or the phantom images: one clear message, the
previous version intact, no temp or staging files left to keep the disk full.

The real-ENOSPC tests mount a 64 KiB tmpfs (root only; skipped elsewhere). The others inject ENOSPC
into the write itself, which works everywhere."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from harness.atomic import atomic_save_torch
from harness.cli.main import main
from harness.errors import HarnessError

ONE_ARM = {"plain": {"backbone": "resnet20", "attention": "none"}}


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB file system (tmpfs): writes beyond it fail with ENOSPC."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the injected-ENOSPC tests cover the same paths")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_real_enospc_checkpoint_keeps_the_previous_version(full_disk: Path) -> None:
    target = full_disk / "last.pt"
    atomic_save_torch(target, {"epoch": torch.tensor(1)})
    with pytest.raises(HarnessError, match=r"disk full while writing .*last\.pt; the previous version is intact"):
        atomic_save_torch(target, {"weights": torch.zeros(100_000)})  # 400 KB
    assert torch.load(target, weights_only=True)["epoch"] == 1
    assert [p.name for p in full_disk.iterdir()] == ["last.pt"]


def test_real_enospc_decode_cache(full_disk: Path, tmp_path: Path) -> None:
    from PIL import Image

    from harness.data.images import decode_images

    paths = []
    for i in range(4):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((8, 8), i, dtype=np.uint8), mode="L").save(paths[-1])
    with pytest.raises(HarnessError, match=r"disk full while writing .*decoded-128-.*\.npy; the previous version is intact"):
        decode_images(paths, 128, cache_dir=full_disk)  # 4 x 128 x 128 bytes > 64 KiB
    assert list(full_disk.iterdir()) == []


def test_real_enospc_phantom_staging_is_removed(full_disk: Path) -> None:
    from harness_plugins.datasets.phantom import generate

    with pytest.raises(HarnessError, match="disk full while writing the phantom dataset .* the partial copy was removed"):
        generate(full_disk / "data", classes=2, per_class=100, patients=4, difficulty=0.3, size=64, seed=0)
    assert list((full_disk / "data").iterdir()) == []  # no staging folder holding the space


def test_injected_enospc_phantom_staging_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness_plugins.datasets.phantom import generate
    from PIL import Image

    real_save = Image.Image.save
    saved: list[int] = []

    def save_until_full(self: Image.Image, *args: Any, **kwargs: Any) -> None:
        if len(saved) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(1)
        real_save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_until_full)
    with pytest.raises(HarnessError, match="disk full while writing the phantom dataset"):
        generate(tmp_path / "data", classes=2, per_class=10, patients=4, difficulty=0.3, size=32, seed=0)
    assert list((tmp_path / "data").iterdir()) == []


def test_injected_enospc_in_a_checkpoint_mid_run(write_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The second last.pt of the first fold hits a full disk: exit 2 with the message, epoch 1's checkpoint
    intact, and once there is space again the rerun resumes to the uninterrupted numbers."""
    study = write_study({"training": {"epochs": 2}}, arms=ONE_ARM)
    reference = tmp_path / "reference"
    assert main(["run", str(study), "--out", str(reference), "--quiet", "--no-report"]) == 0
    real_fdopen = os.fdopen
    checkpoints: list[str] = []

    class FullDisk:
        def __init__(self, handle: Any):
            self.handle = handle

        def write(self, data: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.handle, name)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        if "/r0-f0/.last.pt." in os.readlink(f"/proc/self/fd/{fd}"):
            checkpoints.append("last.pt")
            if len(checkpoints) == 2:
                return FullDisk(handle)
        return handle

    out = tmp_path / "run"
    monkeypatch.setattr(os, "fdopen", fdopen)
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "disk full while writing" in err and "r0-f0/last.pt; the previous version is intact" in err, err
    assert "Traceback" not in err
    cell = out / "cells" / "plain" / "r0-f0"
    assert torch.load(cell / "last.pt", weights_only=True)["state"]["epoch"] == 1
    # no temp file left; no best.pt yet: without a declared selection rule the scored weights are the last epoch's;
    # history.csv holds the epoch that finished (written live)
    assert sorted(p.name for p in cell.iterdir()) == ["fingerprint", "history.csv", "last.pt"]
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    assert main(["run", str(study), "--out", str(out), "--quiet", "--no-report"]) == 0
    columns = ["accuracy", "loss", "epochs"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv")[columns], pd.read_csv(reference / "results.csv")[columns])
