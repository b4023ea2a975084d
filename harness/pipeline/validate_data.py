"""``harness validate``'s dataset checks: everything that needs no training, every problem at once.

Options through the dataset plugin's option model, the table (paths, columns), the group and fold
columns, and class and group counts against ``cv.folds``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from harness.errors import HarnessError, Problem, did_you_mean
from harness.options import component_option_errors
from harness.registry import Registry
from harness.study.loader import LoadedStudy

MAX_LISTED = 5


NOT_CHECKED = "data not checked"  # the note that starts with it: the dataset is generated, not indexed


def data_problems(study: LoadedStudy, registry: Registry) -> tuple[list[Problem], list[str]]:
    """Problems with the dataset (with study-file lines) and notes worth showing (guesses, warnings)."""
    from harness.data.images import decode_images
    from harness.data.prepared import bad_images_message, load_table

    spec = study.spec
    problems: list[Problem] = []

    def add(path: tuple[str, ...], message: str) -> None:
        line = study.line_of(path) or study.line_of(path[:-1]) or study.line_of(path[:1])
        problems.append(Problem(str(study.source), line, ".".join(path), message))

    info = registry.components["datasets"].get(spec.dataset.name)
    if info is None:  # reported by component_problems
        return problems, []
    for key, message in component_option_errors(registry, "datasets", spec.dataset.name, spec.dataset.options):
        add(("dataset", "options", *key.split(".")) if key else ("dataset", "options"), message)
    if problems:
        return problems, []
    if not getattr(info, "cheap_index", True):
        return problems, [f"{NOT_CHECKED}: dataset {spec.dataset.name!r} is generated when a run starts (validate "
                          "only indexes files), so harness run checks its data"]
    with tempfile.TemporaryDirectory(prefix="harness-validate-") as cache:
        try:
            table = load_table(study, registry, Path(cache))
        except HarnessError as exc:
            add(("dataset", "options"), str(exc))
            return problems, []
    missing = [i for i, p in enumerate(table.paths) if not Path(p).is_file()]
    if missing:
        listed = ", ".join(str(table.paths[i]) + (f" (row {table.rows[i]})" if table.rows else "")
                           + (" is not a regular file" if Path(table.paths[i]).exists() else "")
                           for i in missing[:MAX_LISTED])
        add(("dataset", "options", "path"), f"{len(missing)} image file(s) do not exist or are not regular files "
            f"(a FIFO or device): {listed}" + (" ..." if len(missing) > MAX_LISTED else ""))
    else:  # decoded once, as run does: a truncated file opens but does not decode; the duplicate check reuses it
        images = decode_images(table.paths, spec.dataset.image_size)
        if images.bad and spec.dataset.on_bad_image == "error":
            add(("dataset", "on_bad_image"), bad_images_message(table, images.bad))
    columns = [str(c) for c in table.columns.columns]
    cv = spec.cv
    for key, name in (("group", cv.group), ("fold_column", cv.fold_column)):
        if name is not None and name not in columns:
            hint = ("" if columns else "; this dataset has no columns besides image and label")
            if info.group_column_hint:
                hint += f"; {info.group_column_hint}"
            add(("cv", key), f"the dataset has no column {name!r}{did_you_mean(name, columns)}; "
                             f"columns: {', '.join(columns) or 'none'}{hint}")
    if any(p.path.startswith("cv.") for p in problems):
        return problems, table.notes
    notes = list(table.notes)
    _count_problems(table, cv, add, notes)
    if problems:
        return problems, notes
    from harness.data.prepared import describe_data
    from harness.data.splits import make_splits

    try:
        table = _with_duplicates(table, images, spec.dataset, notes)
    except HarnessError as exc:
        add(("dataset", "duplicates"), str(exc))
        return problems, notes
    try:
        splits = make_splits(table, cv, spec.seed)
    except HarnessError as exc:
        add(("cv",), str(exc))
        return problems, notes
    describe_data(table, splits, cv, notes.append)
    return problems, notes


def _with_duplicates(table, images, dataset, notes: list[str]):  # type: ignore[no-untyped-def]
    """Cluster the duplicates among the decoded images: the table with its clusters attached."""
    from harness.data.prepared import check_duplicates

    if images.bad:  # the run reports them (dataset.on_bad_image); the check covers the readable ones
        notes.append(f"{len(images.bad)} unreadable image(s) left out of the duplicate check "
                     f"(e.g. {table.paths[images.bad[0][0]]}: {images.bad[0][1]})")
        keep = np.ones(len(table.paths), dtype=bool)
        keep[[i for i, _ in images.bad]] = False
        table, images = table.subset(keep), images.subset(keep)
    checked, _ = check_duplicates(table, images, dataset.duplicates, notes.append)
    return checked


def _count_problems(table, cv, add, notes: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Classes and groups against k, each its own problem."""
    from harness.data.splits import _groups

    labels = table.labels
    counts = np.bincount(labels, minlength=len(table.class_names))
    if (counts > 0).sum() < 2:
        add(("dataset",), f"only one class ({table.class_names[int(np.argmax(counts))]!r}); a classifier needs two or more")
    if cv.fold_column:
        return
    small = [f"{table.class_names[c]!r} has {int(n)}" for c, n in enumerate(counts) if 0 < n < cv.folds]
    if small:
        add(("cv", "folds"), f"{', '.join(small)} image(s), fewer than cv.folds = {cv.folds}; lower cv.folds or add data")
    groups = _groups(table, cv)
    if groups is None:
        return
    n_groups = len(np.unique(groups))
    if n_groups < cv.folds:
        add(("cv", "group"), f"{n_groups} distinct group(s), fewer than cv.folds = {cv.folds}")
    thin = [f"{table.class_names[c]!r} in {len(np.unique(groups[labels == c]))}"
            for c in range(len(counts)) if 0 < len(np.unique(groups[labels == c])) < cv.folds]
    if thin:
        notes.append(f"warning: class(es) found in fewer groups than cv.folds = {cv.folds} ({', '.join(thin)}): "
                     "some validation folds will have none of them; consider fewer folds")
