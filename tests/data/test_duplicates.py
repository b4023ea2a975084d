"""Duplicate images, annotation files and the content-keyed decode cache, on real image files."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from harness_plugins.datasets.plugin import load_folder
from PIL import Image

from harness.cli.main import main
from harness.contracts import DatasetRequest
from harness.data.duplicates import find_duplicates, merge_groups
from harness.data.images import decode_images
from harness.study.schema import DuplicatesSpec

SIZE = 96


def _scan(seed: int) -> np.ndarray:
    """A distinct grayscale 'scan': a few smooth blobs of random place and size over speckle."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    image = np.zeros((SIZE, SIZE))
    for _ in range(4):
        cy, cx, r = rng.uniform(10, SIZE - 10), rng.uniform(10, SIZE - 10), rng.uniform(6, 20)
        image += rng.uniform(60, 140) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    image += rng.normal(0, 8, image.shape)
    return np.clip(image + 40, 0, 255).astype(np.uint8)


def _copies(original: Path, folder: Path) -> dict[str, Path]:
    """A byte copy, a JPEG re-encode, a half-size resize and a brightness shift of ``original``."""
    image = Image.open(original)
    made = {"bytes": folder / f"{original.stem}_copy.png", "jpeg": folder / f"{original.stem}_q40.jpg",
            "resized": folder / f"{original.stem}_half.png", "brighter": folder / f"{original.stem}_bright.png"}
    shutil.copyfile(original, made["bytes"])
    image.save(made["jpeg"], quality=40)
    image.resize((SIZE // 2, SIZE // 2), Image.Resampling.BILINEAR).save(made["resized"])
    Image.fromarray(np.clip(np.asarray(image).astype(int) + 30, 0, 255).astype(np.uint8)).save(made["brighter"])
    return made


def _folder_dataset(root: Path, per_class: int = 8) -> list[Path]:
    paths = []
    for label in ("benign", "malignant"):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            path = root / label / f"{label}{i:02d}.png"
            Image.fromarray(_scan(len(paths))).save(path)
            paths.append(path)
    return paths


def _study(tmp_path: Path, root: Path, duplicates: dict | None = None, cv: dict | None = None) -> Path:
    dataset = {"name": "folder", "image_size": 16, "options": {"path": str(root)}}
    if duplicates is not None:
        dataset["duplicates"] = duplicates
    study = {"name": "dups", "seed": 0, "dataset": dataset, "cv": {"folds": 3, **(cv or {})},
             "training": {"epochs": 1, "batch_size": 8, "threads": 1}, "arms": {"plain": {"backbone": "resnet20"}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_reencoded_resized_brightened_and_byte_copies_are_one_cluster(tmp_path: Path) -> None:
    originals = _folder_dataset(tmp_path / "data")
    made = {kind: path for o in originals[:3] for kind, path in _copies(o, o.parent).items() if o.stem.endswith("0")}
    made.update({f"{kind}-1": path for kind, path in _copies(originals[1], originals[1].parent).items()})
    paths = originals + list(made.values())
    images = decode_images(paths, 16)
    spec = DuplicatesSpec()
    found = find_duplicates(images.exact, images.phash, images.thumbs, spec.near_threshold, spec.near_correlation)
    for original in (originals[0], originals[1]):
        cluster = found.cluster[paths.index(original)]
        members = {paths[i].name for i in np.flatnonzero(found.cluster == cluster)}
        assert cluster >= 0 and members == {original.name} | {p.name for p in paths if p.stem.startswith(original.stem + "_")}
    assert found.n_clusters == 2 and found.exact_pairs == 2  # the byte copies; the rest by the perceptual check
    exact_only = find_duplicates(images.exact, images.phash, images.thumbs, None)
    assert exact_only.n_images == 4  # two originals and their byte copies


def test_bundled_phantom_has_no_duplicates(tmp_path: Path) -> None:
    """The quickstart's data: distinct phantom scans share a fan shape but are not merged (its splits stay)."""
    from harness_plugins.datasets.phantom import generate

    csv = generate(tmp_path, classes=4, per_class=48, patients=24, difficulty=0.3, size=48, seed=0)
    paths = [csv.parent / p for p in pd.read_csv(csv).iloc[:, 0]]
    images = decode_images(paths, 48)
    spec = DuplicatesSpec()
    found = find_duplicates(images.exact, images.phash, images.thumbs, spec.near_threshold, spec.near_correlation)
    assert found.n_clusters == 0
    groups = np.array(["a", "b"] * (len(paths) // 2))
    assert merge_groups(groups, [str(p) for p in paths], found.cluster) is groups
    assert merge_groups(None, [str(p) for p in paths], found.cluster) is None


def test_cross_class_copy_stops_validate_naming_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    originals = _folder_dataset(root)
    Image.open(originals[2]).save(root / "malignant" / "relabelled.jpg", quality=60)
    assert main(["validate", str(_study(tmp_path, root))]) == 2
    err = capsys.readouterr().err
    assert "benign02.png (benign)" in err and "relabelled.jpg (malignant)" in err and "cross_class: allow" in err
    assert main(["run", str(_study(tmp_path, root)), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "relabelled.jpg (malignant)" in capsys.readouterr().err
    assert not (tmp_path / "run" / "results.csv").exists()
    assert main(["validate", str(_study(tmp_path, root, {"cross_class": "allow"}))]) == 0
    assert "carry different labels" in capsys.readouterr().out


def test_clusters_never_straddle_training_and_validation(tmp_path: Path) -> None:
    root = tmp_path / "data"
    originals = _folder_dataset(root, per_class=9)
    for original in originals[::3]:
        _copies(original, original.parent)
    out = tmp_path / "run"
    study = _study(tmp_path, root, cv={"repeats": 2})
    assert main(["run", str(study), "--out", str(out), "--quiet"]) == 0
    duplicates = pd.read_csv(out / "duplicates.csv")
    assert duplicates.cluster.nunique() == 6 and len(duplicates) == 6 * 5
    cluster_of = dict(zip(duplicates.sample_id, duplicates.cluster, strict=True))
    splits = pd.read_csv(out / "splits.csv")
    for _, part in splits.groupby(["repeat", "fold"]):
        train = {cluster_of[s] for s in part.sample_id[part.role == "train"] if s in cluster_of}
        val = {cluster_of[s] for s in part.sample_id[part.role == "val"] if s in cluster_of}
        assert train and val and not train & val
    import json

    notes = " ".join(json.loads((out / "run.json").read_text())["data_notes"])
    assert "duplicates: 6 cluster(s) of 30 images" in notes and "one side of every fold" in notes
    report = (out / "report.html").read_text()
    assert "Duplicate images (found before training)" in report and 'alt="duplicate image clusters"' in report


def test_annotation_and_other_files_are_excluded_and_counted(tmp_path: Path) -> None:
    root = tmp_path / "data"
    originals = _folder_dataset(root, per_class=4)
    for original in originals:
        Image.fromarray((_scan(0) > 100).astype(np.uint8) * 255).save(original.with_name(original.stem + "_MASK.png"))
    (root / "benign" / "captions.csv").write_text("name,caption\n")
    (root / "README.txt").write_text("about\n")
    request = DatasetRequest({"path": str(root)}, tmp_path, tmp_path, 0)
    table = load_folder(request)
    assert sorted(map(str, table.paths)) == sorted(map(str, originals))
    notes = " ".join(table.notes)
    assert "excluded 8 annotation file(s)" in notes and "benign/benign00_MASK.png" in notes
    assert "skipped 1 file(s) that are not images (.csv): benign/captions.csv" in notes and "README.txt" in notes
    everything = load_folder(DatasetRequest({"path": str(root), "exclude": []}, tmp_path, tmp_path, 0))
    assert len(everything.paths) == 16


def test_decode_cache_notices_same_size_same_mtime_replacement(tmp_path: Path) -> None:
    paths = [tmp_path / f"img{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        Image.fromarray(np.full((16, 16), 10 * i, dtype=np.uint8)).save(path)
    cache = tmp_path / "cache"
    first = decode_images(paths, 8, cache)
    stat = paths[1].stat()
    Image.fromarray(np.full((16, 16), 200, dtype=np.uint8)).save(paths[1])  # same PNG size: one flat gray
    assert paths[1].stat().st_size == stat.st_size
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` or `rsync -t` leave it
    second = decode_images(paths, 8, cache)
    assert int(first.pixels[1].max()) == 10 and int(second.pixels[1].min()) == 200


@pytest.mark.parametrize("damage", ["truncate", "garbage_json", "wrong_shape"])
def test_damaged_decode_cache_warns_and_rebuilds(tmp_path: Path, damage: str) -> None:
    paths = [tmp_path / f"img{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        Image.fromarray(np.full((16, 16), 40 * i, dtype=np.uint8)).save(path)
    cache = tmp_path / "cache"
    first = decode_images(paths, 8, cache)
    npy = next(cache.glob("decoded-*.npy"))
    if damage == "truncate":
        npy.write_bytes(npy.read_bytes()[:100])
    elif damage == "garbage_json":
        npy.with_suffix(".json").write_text("{not json")
    else:
        np.save(npy, np.zeros((2, 1, 8, 8), dtype=np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = decode_images(paths, 8, cache)
    assert any("is damaged" in str(w.message) for w in caught)
    assert np.array_equal(again.pixels.numpy(), first.pixels.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt: the next load is clean
        decode_images(paths, 8, cache)


def test_clusters_join_declared_groups_into_one_unit() -> None:
    groups = np.array(["p1", "p1", "p2", "p3", "p4"])
    merged = merge_groups(groups, ["a", "b", "c", "d", "e"], np.array([-1, 0, 0, -1, 0]))
    assert merged is not None and merged.tolist() == ["p1", "p1", "p1", "p3", "p1"]  # p1, p2, p4 share copies
    alone = merge_groups(None, ["a", "b", "c"], np.array([0, -1, 0]))
    assert alone is not None and alone.tolist() == ["a", "b", "a"]


def test_popcount_without_numpy_2(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.data import duplicates

    values = np.random.default_rng(0).integers(0, 2**63, (4, 9), dtype=np.uint64)
    expected = np.array([[bin(int(v)).count("1") for v in row] for row in values])
    assert (duplicates._popcount(values) == expected).all()
    monkeypatch.delattr(np, "bitwise_count")
    assert (duplicates._popcount(values) == expected).all()


@pytest.mark.parametrize("changed", [{"near_threshold": 4}, {"near_threshold": None}, {"group": False}])
def test_duplicates_options_enter_the_cell_fingerprint_only_when_set(tmp_path: Path, changed: dict) -> None:
    from harness.run.fingerprint import cell_fingerprint
    from harness.study.loader import load_study

    def fingerprint(duplicates: dict | None) -> str:
        study = load_study(_study(tmp_path, tmp_path, duplicates))
        return cell_fingerprint(study, study.arms["plain"])

    default = fingerprint(None)
    assert fingerprint({}) == default == fingerprint(DuplicatesSpec().model_dump())  # older cells stay valid
    assert fingerprint(changed) != default
