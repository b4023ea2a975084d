"""Real dataset layouts on disk, image modes, bad data and patch preparation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness_plugins.datasets.plugin import load_csv
from PIL import Image

from harness.cli.main import main
from harness.contracts import DatasetRequest
from harness.data.images import decode_images

RNG = np.random.default_rng(0)


def _image(path: Path, label: int, mode: str = "L", size: int = 24) -> None:
    """A tiny image whose content depends on the label (so a model can learn it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    base = RNG.integers(0, 60, (size, size)).astype(np.uint8)
    base[:, : size // 2] += 120 if label else 0
    if mode == "RGB":
        Image.fromarray(np.stack([base] * 3, -1)).save(path)
    else:
        Image.fromarray(base, mode="L").save(path)


def _study(tmp_path: Path, dataset: dict, cv: dict | None = None) -> Path:
    import yaml

    study = {"name": "data", "seed": 0, "dataset": {"image_size": 16, **dataset}, "cv": {"folds": 2, **(cv or {})},
             "training": {"epochs": 1, "batch_size": 8, "threads": 1},
             "arms": {"plain": {"backbone": "resnet20"}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def _run(study: Path, out: Path, report: bool = False) -> pd.DataFrame:
    args = ["run", str(study), "--out", str(out), "--quiet"] + ([] if report else ["--no-report"])
    assert main(args) == 0
    return pd.read_csv(out / "results.csv")


def test_fetal_planes_db_replica(tmp_path: Path) -> None:
    """The unmodified public layout: ';' CSV, stray header whitespace, names without extension, Images/."""
    root = tmp_path / "FETAL_PLANES_DB"
    lines = ["Image_name; Patient_num ;Plane;Brain_plane;Operator;US_Machine;Train "]
    planes = ["Fetal brain", "Fetal abdomen"]
    for i in range(24):
        label = i % 2
        _image(root / "Images" / f"Patient{i // 3:05d}_Plane{label}_{i}_of_24.png", label, "RGB" if i % 3 else "L")
        lines.append(f"Patient{i // 3:05d}_Plane{label}_{i}_of_24;{i // 3};{planes[label]};Not A Brain;Op. 1;Voluson E6;{int(i < 18)}")
    (root / "FETAL_PLANES_DB_data.csv").write_text("\n".join(lines) + "\n")
    study = _study(tmp_path, {"name": "csv", "options": {"path": str(root / "FETAL_PLANES_DB_data.csv")}},
                   {"group": "Patient_num"})
    out = tmp_path / "run"
    results = _run(study, out)
    assert len(results) == 2 and "test_accuracy" in results.columns
    notes = " ".join(json.loads((out / "run.json").read_text())["data_notes"])
    for guess in ("delimiter: guessed ';'", "stripped stray whitespace", "'Images/'", "extension: guessed '.png'",
                  "official test split: rows where Train == '0' (6 images)", "label column: guessed 'Plane'"):
        assert guess in notes, guess
    assert json.loads((out / "classes.json").read_text()) == ["Fetal abdomen", "Fetal brain"]
    splits = pd.read_csv(out / "splits.csv")
    assert set(splits[splits.role == "test"].sample_id) == {f"Patient{i // 3:05d}_Plane{i % 2}_{i}_of_24" for i in range(18, 24)}
    for _, part in splits.groupby(["repeat", "fold"]):
        assert not set(part.group[part.role == "train"]) & set(part.group[part.role == "val"])
    predictions = pd.read_csv(out / "predictions.csv")
    assert (predictions.role == "test").sum() == 2 * 6  # every fold's model scores the official test set


def test_ultrasound_csv_with_untrusted_labels_is_escaped(tmp_path: Path) -> None:
    labels = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>']
    for i in range(16):
        _image(tmp_path / "imgs" / f"{i}.png", i % 2)
    pd.DataFrame({"Image_path": [f"imgs/{i}.png" for i in range(16)],
                  "Plane": [labels[i % 2] for i in range(16)]}).to_csv(tmp_path / "labels.csv", index=False)
    study = _study(tmp_path, {"name": "csv", "options": {"path": "labels.csv"}})  # relative to the study file
    out = tmp_path / "run"
    _run(study, out, report=True)
    html = (out / "report.html").read_text()
    assert "attention insight and gallery skipped" not in html  # the relative dataset path still resolves
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html


def test_folder_and_filename_layouts(tmp_path: Path) -> None:
    for i in range(16):
        _image(tmp_path / "folder" / ("benign" if i % 2 else "malignant") / f"{i}.png", i % 2)
        _image(tmp_path / "flat" / f"{'a' if i % 2 else 'b'}_patient{i // 4}_{i}.png", i % 2)
    assert len(_run(_study(tmp_path, {"name": "folder", "options": {"path": "folder"}}), tmp_path / "r1")) == 2
    study = _study(tmp_path, {"name": "filename", "options": {"path": "flat", "pattern": r"^(?P<label>[ab])_",
                                                              "group_pattern": r"(patient\d+)"}})
    out = tmp_path / "r2"
    assert len(_run(study, out)) == 2
    assert json.loads((out / "classes.json").read_text()) == ["a", "b"]
    splits = pd.read_csv(out / "splits.csv")
    assert set(splits.group) == {f"patient{i}" for i in range(4)}  # grouped by the pattern's patient id


def test_image_modes_are_all_decoded(tmp_path: Path) -> None:
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as deep:
        assert deep.mode.startswith("I")  # really a 16-bit PNG
    assert decode_images([tmp_path / "gray.png", tmp_path / "deep.png"], 8).channels == 1
    np.testing.assert_array_equal(
        *decode_images([tmp_path / "gray.png", tmp_path / "deep.png"], 8).pixels[:, 0].numpy())  # 16-bit scaled to 8
    Image.fromarray(np.stack([gray] * 3, -1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.stack([gray] * 4, -1), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(gray, mode="L").convert("P").save(tmp_path / "palette.png")
    decoded = decode_images([tmp_path / n for n in ("gray.png", "rgb.png", "rgba.png", "palette.png", "deep.png")], 8)
    assert decoded.channels == 3 and not decoded.bad
    for index in range(5):
        assert abs(int(decoded.pixels[index, 1, 4, 4]) - int(gray[4, 4])) <= 2


def _bad_dataset(tmp_path: Path) -> Path:
    lines = ["Image_path,Plane"]
    for i in range(12):
        _image(tmp_path / f"{i}.png", i % 2)
        lines.append(f"{i}.png,{i % 2}")
    (tmp_path / "3.png").write_bytes(b"")
    (tmp_path / "5.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    lines.append("missing.png,1")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "labels.csv"


def test_bad_images_are_all_named_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = _study(tmp_path, {"name": "csv", "options": {"path": str(_bad_dataset(tmp_path))}})
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "3 image(s) could not be read" in err
    assert "row 5: " in err and "zero-byte file" in err
    assert "row 7: " in err and "unreadable image" in err
    assert "row 14: " in err and "missing.png: file not found" in err
    assert "on_bad_image: skip" in err
    assert not (tmp_path / "run" / "cells").exists()


def test_bad_images_can_be_skipped_and_are_recorded(tmp_path: Path) -> None:
    study = _study(tmp_path, {"name": "csv", "on_bad_image": "skip", "options": {"path": str(_bad_dataset(tmp_path))}})
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="skipping 3 unreadable"):
        _run(study, out, report=True)
    assert len(pd.read_csv(out / "skipped_images.csv")) == 3
    assert "missing.png" in (out / "report.html").read_text()


@pytest.mark.parametrize("per_class,cv,message", [
    ({"a": 6, "b": 1}, {}, "'b' has 1 sample\\(s\\), fewer than cv.folds = 2"),
    ({"a": 6}, {}, "only one class"),
    ({"a": 6, "b": 6}, {"group": "site"}, "1 distinct group"),
])
def test_fold_feasibility_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], per_class: dict, cv: dict, message: str) -> None:
    lines = ["Image_path,Plane,site"]
    for label, count in per_class.items():
        for i in range(count):
            _image(tmp_path / f"{label}{i}.png", 0)
            lines.append(f"{label}{i}.png,{label},s1")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    study = _study(tmp_path, {"name": "csv", "options": {"path": "labels.csv"}}, cv)
    assert main(["run", str(study), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_prepare_patches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    for i in range(10):
        image = np.full((64, 96), 255, dtype=np.uint8)
        image[:32, :64] = RNG.integers(0, 200, (32, 64))  # two usable 32x32 tiles; four mostly white
        Image.fromarray(image).save(src.mkdir(exist_ok=True) or src / f"{'tumour' if i % 2 else 'normal'}_{i}.png")
    assert main(["prepare", "patches", str(src), str(tmp_path / "dst"), "--size", "32", "--test-fraction", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "10 source images (2 held out for test): kept 20 patches, discarded 40 mostly-white ones" in out
    table = pd.read_csv(tmp_path / "dst" / "labels.csv")
    assert len(table) == 20 and table.groupby("source").split.nunique().max() == 1  # no source straddles
    request = DatasetRequest({"path": str(tmp_path / "dst" / "labels.csv")}, tmp_path, tmp_path, 0)
    loaded = load_csv(request)
    assert loaded.official_test is not None and loaded.official_test.sum() == 4


def test_second_run_reuses_the_decoded_cache(tmp_path: Path, write_study) -> None:  # type: ignore[no-untyped-def]
    study = write_study({"training": {"epochs": 1}})
    out = tmp_path / "run"
    _run(study, out)
    caches = sorted((out / "cache").glob("decoded-*.npy"))
    assert len(caches) == 1
    stamp = caches[0].stat().st_mtime_ns
    _run(study, out, report=False)
    main(["run", str(study), "--out", str(out), "--quiet", "--no-report", "--set", "training.epochs=2"])
    assert caches[0].stat().st_mtime_ns == stamp and len(list((out / "cache").glob("decoded-*.npy"))) == 1
