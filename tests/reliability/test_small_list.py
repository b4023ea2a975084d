"""Issue 26.7: bad inputs end in one message (exit 2), never a traceback or a misleading one."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.cli.main import main


def _validate(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["validate", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_a_huge_or_special_study_file_is_refused_before_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("name: big\n" + "# padding\n" * 110_000)
    assert "refused before parsing" in _validate(capsys, str(big))
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in _validate(capsys, str(fifo))  # reading it would block forever


@pytest.mark.parametrize("change, expected", [
    ({"name": "n" * 101}, "String should have at most 100 characters"),
    ({"arms": {"a" * 300: {"backbone": "resnet20"}, "b": {"backbone": "resnet20", "attention": "se"}}},
     "has 300 characters; use at most 100"),
    ({"training": {"optimizer": {"lr": float("inf")}}}, "training.optimizer.lr: Input should be a finite number"),
    ({"compare": {"rope": float("nan")}}, "compare.rope: Input should be a finite number"),
    ({"training": {"epochs": True}}, "training.epochs: Input should be a valid integer"),
    ({"training": {"amp": "yes"}}, "training.amp: Input should be a valid boolean"),
])
def test_names_numbers_and_flags_are_checked(write_study, capsys: pytest.CaptureFixture[str],
                                             change: dict, expected: str) -> None:  # type: ignore[no-untyped-def]
    study = write_study(change)
    if "arms" in change:  # replace, not merge
        spec = yaml.safe_load(study.read_text())
        spec["arms"], spec["compare"]["baseline"] = change["arms"], "b"
        study.write_text(yaml.safe_dump(spec))
    assert expected in _validate(capsys, "--no-data", str(study))


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_cuda_on_a_cpu_only_machine_is_refused_by_validate(write_study, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    err = _validate(capsys, "--no-data", str(write_study({"training": {"device": "cuda"}})))
    assert "training.device: device 'cuda' but this machine has no CUDA GPU" in err


def test_errors_in_a_key_made_up_by_set_are_blamed_on_set(write_study, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    err = _validate(capsys, "--no-data", str(write_study()), "--set", "trainng.epochs=3")
    assert "--set: trainng: unknown key 'trainng'" in err and "study.yaml" not in err


def _png_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(root / label / f"{i}.png")
    return root


def test_validate_decodes_every_image_as_run_does(write_study, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    images = _png_folder(tmp_path / "images")
    study = write_study()
    spec = yaml.safe_load(study.read_text())
    spec["dataset"] = {"name": "folder", "image_size": 32, "options": {"path": str(images)}}
    study.write_text(yaml.safe_dump(spec))
    capsys.readouterr()
    assert main(["validate", str(study)]) == 0
    whole = (images / "a" / "0.png").read_bytes()
    (images / "a" / "0.png").write_bytes(whole[: len(whole) // 2])  # opens (header intact), does not decode
    err = _validate(capsys, str(study))
    assert "dataset.on_bad_image: 1 image(s) could not be read" in err and "0.png: unreadable image" in err


def test_csv_paths_that_are_folders_or_fifos_say_so(write_study, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    images = _png_folder(tmp_path / "images")
    study = write_study()
    spec = yaml.safe_load(study.read_text())

    def with_csv(path: Path) -> str:
        spec["dataset"] = {"name": "csv", "image_size": 32, "options": {"path": str(path)}}
        study.write_text(yaml.safe_dump(spec))
        return _validate(capsys, str(study))

    assert f"dataset CSV {images} is a folder, not a CSV file" in with_csv(images)
    os.mkfifo(tmp_path / "labels.csv")
    assert "is not a regular file (a FIFO or device)" in with_csv(tmp_path / "labels.csv")
    table = tmp_path / "table.csv"
    rows = [f"{p},{p.parent.name}" for p in sorted(images.glob("*/*.png"))]
    os.mkfifo(tmp_path / "pipe.png")
    table.write_text("image,label\n" + "\n".join([*rows, f"{tmp_path / 'pipe.png'},a"]) + "\n")
    assert "pipe.png (row 14) is not a regular file" in with_csv(table)


def test_refusing_a_malicious_checkpoint_never_advises_weights_only_false(tmp_path: Path) -> None:
    from harness.errors import HarnessError
    from harness.models.weights import safe_torch_load

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, ("echo owned",))

    for protocol in (2, 4):
        path = tmp_path / f"evil{protocol}.pt"
        path.write_bytes(pickle.dumps(Evil(), protocol=protocol))
        with pytest.raises(HarnessError) as refused:
            safe_torch_load(path)
        message = str(refused.value)
        assert "refused to load" in message and "weights_only" not in message and "allowlist" not in message


def test_identical_arms_are_flagged_by_validate(write_study, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    study = write_study(arms={"plain": {"backbone": "resnet20"}, "again": {"backbone": "resnet20", "attention": "none"},
                              "se": {"backbone": "resnet20", "attention": "se"}})
    capsys.readouterr()
    assert main(["validate", "--no-data", str(study)]) == 0
    out = capsys.readouterr().out
    assert "warning: arms plain and again are identical" in out and "se are identical" not in out
