"""User mistakes that used to end in a raw traceback: each is one clear message naming the thing, exit 2,
and ``validate`` catches those it can without the data."""

from __future__ import annotations

import builtins
import errno
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from harness.cli.main import main

ONE_ARM = {"plain": {"backbone": "resnet20", "attention": "none"}}


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _csv_study(write_study, tmp_path: Path, csv_text: str) -> Path:  # type: ignore[no-untyped-def]
    (tmp_path / "labels.csv").write_text(csv_text)
    study = write_study(arms=ONE_ARM)
    data = yaml.safe_load(study.read_text())
    data["dataset"] = {"name": "csv", "image_size": 32, "options": {"path": str(tmp_path / "labels.csv")}}
    study.write_text(yaml.safe_dump(data))
    return study


@pytest.mark.parametrize(("csv_text", "detail"), [
    ("image_path,label\na.png,x\nb.png,y,extra\n", "Expected 2 fields in line 3, saw 3"),
    ('image_path,label\na.png,x\n"b.png,y\n', "EOF inside string"),
], ids=["extra comma", "unterminated quote"])
def test_malformed_csv(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str], csv_text: str,  # type: ignore[no-untyped-def]
                       detail: str) -> None:
    study = _csv_study(write_study, tmp_path, csv_text)
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = _err(capsys)
    assert "labels.csv: not a well-formed CSV" in err and detail in err and "or an unclosed quote" in err, err


def test_tiny_test_fraction(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"cv": {"test_fraction": 0.01}}, arms=ONE_ARM)
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "cv.test_fraction = 0.01 cannot hold out a test part of 24 samples (2 classes)" in _err(capsys)


@pytest.mark.parametrize(("update", "message"), [
    ({"seed": -5}, "seed: Input should be greater than or equal to 0"),
    ({"training": {"scheduler": {"name": "step", "step_size": 0}}},
     "scheduler 'step': option 'step_size': Input should be greater than or equal to 1 (got 0)"),
    ({"training": {"batch_size": 1}}, "training.batch_size: batch_size 1 cannot train resnet20 (BatchNorm needs 2"),
    ({"tune": {"space": {"training.optimizer.lr": {"low": 0.001, "high": 0.1, "log": True, "step": 0.01}}}},
     "a range cannot be both log and stepped (Optuna refuses it)"),
], ids=["seed -5", "step_size 0", "batch_size 1 with BatchNorm", "tune log and step"])
def test_validate_catches(write_study, capsys: pytest.CaptureFixture[str], update: dict[str, Any], message: str) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate", str(write_study(update))]) == 2
    err = _err(capsys)
    assert message in err, err


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A valid PNG that claims width x height pixels (Pillow refuses it on open, before decoding)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))


def test_decompression_bomb_is_a_bad_image_not_a_crash(tmp_path: Path) -> None:
    from PIL import Image

    from harness.data.images import decode_images

    bomb, good = tmp_path / "bomb.png", tmp_path / "good.png"
    _png_header_only(bomb, 30000, 30000)
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8), mode="L").save(good)
    decoded = decode_images([good, bomb], 8)
    assert [i for i, _ in decoded.bad] == [1]  # so on_bad_image: skip can skip it, and error lists it
    assert decoded.bad[0][1].startswith("refused: too many pixels for an image")


def test_read_only_run_directory(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "readonly"
    out.mkdir()
    out.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: refuse writes under the folder as a read-only mount would
        real_open = builtins.open

        def read_only_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if str(file).startswith(str(out)) and any(c in mode for c in "wax+"):
                raise PermissionError(errno.EACCES, "Permission denied", str(file))
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", read_only_open)
    assert main(["run", str(write_study(arms=ONE_ARM)), "--out", str(out), "--quiet"]) == 2
    err = _err(capsys)
    assert f"error: cannot write {out}/.lock: Permission denied; make it writable, or write elsewhere with --out" in err


def test_out_pointing_at_a_file(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert main(["run", str(write_study()), "--out", str(target), "--quiet"]) == 2
    assert f"--out {target} is a file, not a folder" in _err(capsys)
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("command", [["model", "resnet20"], ["bench", "--backbone", "resnet20", "--steps", "1"]])
@pytest.mark.parametrize("attention", ["{name: se", "[se, 4]"])
def test_malformed_attention_option(capsys: pytest.CaptureFixture[str], command: list[str], attention: str) -> None:
    assert main([*command, "--attention", attention]) == 2
    err = _err(capsys)
    assert f"--attention {attention!r}" in err and "give a name (se) or a mapping" in err or "must be a name" in err, err


def test_prepare_patches_size_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", "patches", str(tmp_path), str(tmp_path / "out"), "--size", "0"]) == 2
    assert "--size must be at least 1 pixel (got 0)" in _err(capsys)


def test_bad_journal_storage_path(write_study, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"tune": {"arms": ["plain"], "trials": 2,
                                  "space": {"training.optimizer.lr": {"low": 0.001, "high": 0.1}}}})
    url = f"journal:{tmp_path}/missing/folder/tuning.log"
    assert main(["tune", str(study), "--out", str(tmp_path / "run"), "--quiet", "--storage", url]) == 2
    assert f"storage {url!r}: {tmp_path}/missing/folder/tuning.log is not a file in an existing folder" in _err(capsys)


def test_5001_digit_label_is_a_label() -> None:
    from harness_plugins.datasets.plugin import _encode_labels

    huge = "7" * 5001
    labels, names = _encode_labels([huge, "2", "10", "-3", "2"])
    assert names == ["-3", "2", "10", huge]  # numeric order, without int() and its 4300-digit limit
    assert labels.tolist() == [3, 1, 2, 0, 1]


@pytest.mark.parametrize("command", [["compare", "{run}", "--baseline", "plain", "--json"], ["list", "attention"]],
                         ids=["compare --json", "small output"])
def test_output_into_a_closed_pipe(tmp_path: Path, command: list[str]) -> None:
    rows = [{"arm": arm, "repeat": 0, "fold": f, "accuracy": 0.5 + 0.01 * f + (0.1 if arm == "se" else 0),
             "f1_macro": 0.5, "n_train": 20, "n_val": 5} for arm in ("plain", "se") for f in range(5)]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    read, write = os.pipe()
    os.close(read)  # like `| head` that has already exited
    line = [sys.executable, "-m", "harness.cli", *[part.format(run=tmp_path) for part in command]]
    done = subprocess.run(line, stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    os.close(write)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
