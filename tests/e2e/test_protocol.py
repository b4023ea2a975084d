"""The training protocol is honest: no choice on the scored fold, declared augmentation and init,
independent seed streams, and cells that notice when the data changed (issue 13 items 1, 8-11)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from harness.cli.main import main
from harness.data.images import ImageTable
from harness.data.splits import make_splits
from harness.study.schema import CVSpec

CHANCE_MARGIN = 0.08


def _run(study: Path, out: Path, *extra: str) -> None:
    assert main(["run", str(study), "--out", str(out), "--quiet", *extra]) == 0


def _phantom_csv(folder: Path, per_class: int, size: int) -> Path:
    """Real (phantom) ultrasound images on disk, with their own label CSV."""
    from harness_plugins.datasets.phantom import generate

    return generate(folder, classes=2, per_class=per_class, patients=8, difficulty=0.3, size=size, seed=0)


def _csv_study(tmp_path: Path, csv: Path, **update: Any) -> Path:
    study: dict[str, Any] = {
        "name": "csvstudy", "seed": 0,
        "dataset": {"name": "csv", "image_size": update.pop("image_size", 16), "options": {"path": str(csv)}},
        "cv": update.pop("cv", {"folds": 2, "repeats": 1}),
        "training": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "sgd", "lr": update.pop("lr", 0.05), "momentum": 0.9},
                     "scheduler": {"name": "step", "step_size": 100, "gamma": 1.0}, "threads": 1,
                     **update.pop("training", {})},
        "arms": update.pop("arms", {"plain": {"backbone": "resnet20", "attention": "none"}}),
        **update,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


# -- item 1: selection never peeks at the scored fold ---------------------------------------------


def test_random_labels_with_early_stopping_score_at_chance(tmp_path: Path) -> None:
    """Labels that carry no information: the honest fold score is at chance, while the old protocol's
    number (the best validation epoch, read from the same run's curves) is well above it."""
    source = _phantom_csv(tmp_path / "data", per_class=50, size=16)
    frame = pd.read_csv(source)[["image_path"]]
    rng = np.random.default_rng(7)
    frame["label"] = rng.permutation(np.repeat(["a", "b"], len(frame) // 2))
    csv = source.parent / "random_labels.csv"
    frame.to_csv(csv, index=False)
    study = _csv_study(tmp_path, csv, cv={"folds": 5, "repeats": 2}, lr=0.01,
                       training={"epochs": 14, "early_stopping": {"patience": 6, "monitor": "inner_accuracy"},
                                 "selection": {"rule": "best", "inner_fraction": 0.2}})
    out = tmp_path / "run"
    _run(study, out, "--no-report")
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 10 and (results.n_inner > 0).all()
    honest = results.accuracy.mean()
    assert abs(honest - 0.5) <= CHANCE_MARGIN, honest
    # what "restore the best epoch on the fold's own validation part" would have reported
    peeked = np.mean([pd.read_csv(h).val_accuracy.max() for h in sorted((out / "cells").glob("*/*/history.csv"))])
    assert peeked > 0.5 + CHANCE_MARGIN, peeked


def _table(n_per_class: tuple[int, int] = (30, 20), groups: int | None = 10) -> ImageTable:
    labels = np.repeat([0, 1], n_per_class)
    n = len(labels)
    columns = pd.DataFrame({"patient": [f"P{i % groups}" for i in range(n)]}) if groups else pd.DataFrame()
    return ImageTable([Path(f"img{i}.png") for i in range(n)], labels, ["a", "b"], [f"s{i}" for i in range(n)],
                      columns=columns)


def test_inner_split_is_stratified_grouped_disjoint_and_seeded() -> None:
    table = _table()
    splits = make_splits(table, CVSpec(folds=3, group="patient", repeats=2), seed=3, inner_fraction=0.25)
    again = make_splits(table, CVSpec(folds=3, group="patient", repeats=2), seed=3, inner_fraction=0.25)
    groups = table.columns.patient.to_numpy()
    for fold, same in zip(splits.folds, again.folds, strict=True):
        assert len(fold.inner) and np.array_equal(fold.inner, same.inner)  # same indices whoever asks
        assert set(fold.inner) <= set(fold.train) and not set(fold.inner) & set(fold.val)
        assert not set(fold.fit) & set(fold.inner) and set(fold.fit) | set(fold.inner) == set(fold.train)
        assert not set(groups[fold.inner]) & set(groups[fold.fit])  # no patient on both sides
        assert set(table.labels[fold.inner]) == {0, 1}
    plain = make_splits(_table((40, 20), groups=None), CVSpec(folds=4), seed=0, inner_fraction=0.25)
    for fold in plain.folds:  # stratified: the inner split keeps the training part's 2:1 ratio
        share = np.bincount(np.repeat([0, 1], (40, 20))[fold.inner], minlength=2)
        assert abs(share[0] / share.sum() - 2 / 3) < 0.1, share
    roles = splits.table
    assert set(roles.role) == {"train", "inner", "val"}
    assert make_splits(table, CVSpec(folds=3), seed=3).folds[0].inner.size == 0  # nothing declared, nothing carved


def test_every_arm_gets_the_same_inner_split_and_named_curves(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    study = write_study({"training": {"epochs": 2, "early_stopping": {"patience": 1},
                                      "selection": {"inner_fraction": 0.25}}})
    _run(study, out, "--no-report")
    results = pd.read_csv(out / "results.csv")
    for _, cells in results.groupby("fold"):
        assert cells.n_inner.nunique() == 1 and cells.n_inner.iloc[0] > 0 and cells.n_train.nunique() == 1
    assert set(results.selection) == {"last"} and (results.scored_epoch == results.epochs).all()
    splits = pd.read_csv(out / "splits.csv")
    for _, part in splits.groupby(["repeat", "fold"]):
        assert not set(part.sample_id[part.role == "inner"]) & set(part.sample_id[part.role == "val"])
    history = pd.read_csv(out / "cells" / "se" / "r0-f0" / "history.csv")
    assert {"train_loss", "train_accuracy", "inner_loss", "inner_accuracy", "val_loss", "val_accuracy"} <= set(history)
    resolved = yaml.safe_load((out / "study.yaml").read_text())
    assert resolved["training"]["selection"] == {"rule": "last", "inner_fraction": 0.25}
    assert resolved["training"]["early_stopping"]["monitor"] == "inner_loss"  # the split it really watches
    from harness.study.loader import load_study

    assert load_study(out / "study.yaml").spec.training.selection.inner_fraction == 0.25  # the report reloads it


@pytest.mark.parametrize(("update", "arms", "message"), [
    ({"training": {"early_stopping": {"patience": 3}}}, None, "training.selection.inner_fraction"),
    ({"training": {"selection": {"rule": "best"}}}, None, "training.selection.inner_fraction"),
    ({}, {"a": {"backbone": "resnet20"}, "b": {"backbone": "resnet20", "training": {"selection": {"rule": "best"}}}},
     "set once for the study"),
    ({"init": "zero_last_bn"}, None, "attention placed after it starts with zero input"),
    ({"dataset": {"augment": {"enabled": True}}}, None, "names no transform"),
])
def test_protocol_mistakes_are_load_time_errors(write_study, capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
                                                update: dict[str, Any], arms: dict[str, Any] | None, message: str) -> None:
    assert main(["validate", str(write_study(update, arms=arms))]) == 2
    err = capsys.readouterr().err
    assert message in err and "study.yaml:" in err, err


# -- item 8: the fingerprint covers the data --------------------------------------------------------


def test_relabelled_csv_retrains_the_cells(tmp_path: Path) -> None:
    source = _phantom_csv(tmp_path / "data", per_class=6, size=16)
    frame = pd.read_csv(source)[["image_path", "label"]]
    csv = source.parent / "mine.csv"
    frame.to_csv(csv, index=False)
    study = _csv_study(tmp_path, csv)
    out = tmp_path / "run"
    _run(study, out, "--no-report")
    result = out / "cells" / "plain" / "r0-f0" / "result.json"
    stamp = result.stat().st_mtime_ns
    _run(study, out, "--no-report")
    assert result.stat().st_mtime_ns == stamp  # unchanged data: reused
    relabelled = frame.copy()
    relabelled.loc[[0, len(frame) - 1], "label"] = relabelled.label[[len(frame) - 1, 0]].to_numpy()  # swap two labels
    relabelled.to_csv(csv, index=False)
    _run(study, out, "--no-report")
    assert result.stat().st_mtime_ns != stamp
    predictions = pd.read_csv(out / "predictions.csv")
    first = relabelled.image_path[0]
    row = predictions[predictions.sample_id.str.endswith(Path(first).stem, na=False) |
                      (predictions.sample_id == first)]
    classes = json.loads((out / "classes.json").read_text())
    assert len(row) and classes[int(row.y_true.iloc[0])] == relabelled.label[0]  # scored against the new label


# -- item 9: independent seed streams ---------------------------------------------------------------


def test_repeat_streams_do_not_collide_across_seeds() -> None:
    table = _table(groups=None)
    a = make_splits(table, CVSpec(folds=3, repeats=2), seed=0)
    b = make_splits(table, CVSpec(folds=3, repeats=1), seed=1000)
    repeat1 = [f.val for f in a.folds if f.repeat == 1]
    assert not all(np.array_equal(x, y) for x, y in zip(repeat1, b.folds, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(repeat1, [f.val for f in a.folds if f.repeat == 0],
                                                        strict=True))
    from harness.seeds import stream_seed

    assert stream_seed(0, "init", 1, 0) != stream_seed(1000, "init", 0, 0)
    assert len({stream_seed(0, p, 0, 0) for p in ("init", "order", "augment", "inner", "fold")}) == 5


# -- item 11: augmentation only when declared -------------------------------------------------------


def _first_batch(study_path: Path, registry: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch the model really received at the first step, and the unaugmented one."""
    from harness.models.build import build_model
    from harness.run.trainer import FoldInputs, FoldTrainer, prepare
    from harness.study.loader import load_study

    study = load_study(study_path)
    torch.manual_seed(0)
    model = build_model(registry, "resnet20", "none", {}, num_classes=2, in_chans=1, image_size=16)
    x = torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1] * 4)
    inputs = FoldInputs(x, y, x[:0], y[:0], x[:0], y[:0], torch.tensor([0.5]), torch.tensor([0.25]), 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
    trainer = FoldTrainer(model, optimizer, scheduler, study.spec.training, study.spec.dataset.augment, inputs,
                          study_path.parent, 0, torch.device("cpu"))
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    idx = torch.arange(8)
    trainer.train_step(idx, torch.Generator().manual_seed(1), torch.zeros(()), torch.zeros((), dtype=torch.long))
    plain = (prepare(x, inputs, False) - 0.5) / 0.25
    return seen[0], plain


def test_a_study_without_augment_trains_on_unaugmented_batches(write_study, builtin_registry) -> None:  # type: ignore[no-untyped-def]
    seen, plain = _first_batch(write_study(), builtin_registry)
    assert torch.equal(seen, plain)
    seen, plain = _first_batch(write_study({"dataset": {"augment": "light"}}), builtin_registry)  # declared: it does run
    assert not torch.equal(seen, plain)


def test_protocol_line_names_selection_augmentation_and_init(write_study, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from harness.report.render import protocol_text
    from harness.study.arm_identity import resolved_study
    from harness.study.loader import load_study

    plain = protocol_text(resolved_study(load_study(write_study())))
    assert "model selection: none, the last epoch is scored" in plain
    assert "augmentation: none" in plain and "init: standard" in plain
    declared = protocol_text(resolved_study(load_study(write_study({
        "dataset": {"augment": {"preset": "light", "rotate": 5}},
        "training": {"early_stopping": {"patience": 4}, "selection": {"rule": "best", "inner_fraction": 0.1}}}))))
    assert "inner split (10 % of each fold's training part" in declared
    assert "early stopping on inner_loss (patience 4)" in declared and "best inner epoch is scored" in declared
    assert "augmentation: light preset: hflip p=0.5, rotate ±5°" in declared
