"""The cell fingerprint: older cells keep theirs when a new option is at its default; every change counts."""

from __future__ import annotations

import numpy as np

from harness.run.fingerprint import cell_fingerprint
from harness.seeds import sklearn_seed
from harness.study.loader import load_study


def test_fingerprint_changes_with_vary_but_not_for_the_default(write_study) -> None:  # type: ignore[no-untyped-def]
    from harness.run.fingerprint import cell_fingerprint
    from harness.study.loader import load_study

    def fingerprint(cv: dict) -> str:
        study = load_study(write_study({"cv": cv}))
        return cell_fingerprint(study, next(iter(study.arms.values())))

    default = fingerprint({"repeats": 2})
    assert fingerprint({"repeats": 2, "vary": ["augment", "order", "init", "split"]}) == default
    assert len({default, fingerprint({"repeats": 2, "vary": ["init"]}), fingerprint({"repeats": 2, "vary": ["split"]})}) == 3
    assert np.unique([sklearn_seed(0, "split", r) for r in range(3)]).size == 3


# the tiny study's fingerprints as computed by the harness before determinism and compute counted (main, c1d7b82)
BEFORE = {"plain": "9d5f2c5b3f759fd3", "se": "b4c6870aee40bbe0"}


def test_defaults_keep_older_fingerprints_and_every_change_counts(write_study) -> None:  # type: ignore[no-untyped-def]
    study = load_study(write_study())
    assert study.arms["plain"].training.deterministic is True
    assert {name: cell_fingerprint(study, arm, "k") for name, arm in study.arms.items()} == BEFORE
    plain = study.arms["plain"]
    assert cell_fingerprint(study, plain, "k", compute="cpu/fp32") == BEFORE["plain"]
    off = load_study(write_study({"training": {"deterministic": False}}))
    per_arm = load_study(write_study(arms={"plain": {"backbone": "resnet20", "training": {"deterministic": False}}}))
    faked = {compute: cell_fingerprint(study, plain, "k", compute=compute)
             for compute in ("cuda/bf16", "cuda/fp16", "cuda/fp32")}
    every = {BEFORE["plain"], cell_fingerprint(off, off.arms["plain"], "k"), *faked.values()}
    assert len(every) == 5  # each differs from the CPU fp32 cell and from each other
    assert cell_fingerprint(per_arm, per_arm.arms["plain"], "k") == cell_fingerprint(off, off.arms["plain"], "k")
