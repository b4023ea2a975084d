"""Dataset loaders: ``csv`` (incl. the unmodified FETAL_PLANES_DB download), ``folder``,
``filename`` and the synthetic ``phantom``. Each returns an :class:`~harness.data.images.ImageTable`."""

from __future__ import annotations

import csv
import fnmatch
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness_plugins.datasets.options import (
    CsvOptions,
    FilenameOptions,
    FolderOptions,
    PhantomOptions,
)

from harness.api import (
    DatasetInfo,
    DatasetRequest,
    HarnessError,
    did_you_mean,
    hookimpl,
    parse_options,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from harness.api import ImageTable

IMAGE_COLUMNS = ("image_path", "image_name", "image", "path", "filename", "file")
LABEL_COLUMNS = ("plane", "label", "class", "target", "y")
SPLIT_COLUMNS = ("train", "split")
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
GROUP_HINT = "folder/filename datasets get a column 'group' from dataset.options.group_pattern"


def _options(options: Mapping[str, Any], model: Any, dataset: str) -> dict[str, Any]:
    """The options checked through the dataset's option model; unset optional ones left out."""
    return parse_options(model, options, f"dataset {dataset!r}").model_dump(exclude_unset=True)


def _pick_column(frame: pd.DataFrame, wanted: str | None, candidates: tuple[str, ...], what: str,
                 csv_path: Path, notes: list[str]) -> str | None:
    if wanted is not None:
        if wanted not in frame.columns:
            raise HarnessError(
                f"{csv_path}: no column {wanted!r} for the {what}{did_you_mean(wanted, frame.columns)}; "
                f"columns: {', '.join(frame.columns)}"
            )
        return wanted
    lower = {c.lower(): c for c in frame.columns}
    for candidate in candidates:
        if candidate in lower:
            notes.append(f"{what} column: guessed {lower[candidate]!r} (set the option to choose another)")
            return lower[candidate]
    return None


def read_csv_table(csv_path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read a label CSV as strings, sniffing the delimiter and stripping header whitespace."""
    import pandas as pd

    notes: list[str] = []
    if csv_path.is_dir():
        raise HarnessError(f"dataset CSV {csv_path} is a folder, not a CSV file; give the CSV's path in "
                           "dataset.options.path (or use the folder dataset for a folder of class subfolders)")
    if csv_path.exists() and not csv_path.is_file():  # a FIFO or device would block or never end
        raise HarnessError(f"dataset CSV {csv_path} is not a regular file (a FIFO or device); give a CSV file")
    try:
        raw = csv_path.read_bytes()
    except FileNotFoundError:
        raise HarnessError(f"dataset CSV {csv_path} does not exist; check dataset.options.path") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HarnessError(
            f"{csv_path}: not UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); re-save the CSV as UTF-8"
        ) from None
    if not text.strip():
        raise HarnessError(f"{csv_path}: the CSV is empty; it needs a header and one row per image")
    first_line = text.splitlines()[0]
    try:
        delimiter = csv.Sniffer().sniff(first_line, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    if delimiter != ",":
        notes.append(f"delimiter: guessed {delimiter!r} from the header")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, csv.Error) as exc:  # an extra delimiter, an unclosed quote
        raise HarnessError(f"{csv_path}: not a well-formed CSV: {str(exc).strip()}; look for an extra "
                           f"{delimiter!r} or an unclosed quote on that line") from None
    stripped = [str(c).strip() for c in frame.columns]
    if stripped != list(frame.columns):
        notes.append("header: stripped stray whitespace from column names")
        frame.columns = stripped
    frame = frame.apply(lambda col: col.str.strip())
    if frame.empty:
        raise HarnessError(f"{csv_path}: the CSV has a header but no rows")
    return frame, notes


def _resolve_paths(names: list[str], base: Path, images_dir: str | None, extension: str | None,
                   notes: list[str]) -> list[Path]:
    folder = base / images_dir if images_dir else base
    if images_dir is None and not (base / names[0]).exists() and any(
        (base / "Images" / (names[0] + ext)).exists() for ext in ("", *EXTENSIONS)
    ):
        folder = base / "Images"
        notes.append("images folder: guessed 'Images/' next to the CSV (set images_dir to choose another)")
    if extension is None and not Path(names[0]).suffix:
        for ext in EXTENSIONS:
            if (folder / (names[0] + ext)).exists():
                extension = ext
                notes.append(f"file extension: guessed {ext!r} for names without one (set extension to choose)")
                break
    suffix = extension or ""
    return [Path(n) if Path(n).is_absolute() else folder / (n + ("" if Path(n).suffix else suffix)) for n in names]


def _encode_labels(values: list[str]) -> tuple[np.ndarray, list[str]]:
    from decimal import Decimal  # numeric order without int(), which refuses over 4300 digits

    import numpy as np

    def order(v: str) -> tuple[int, Decimal, str]:
        return (0, Decimal(v), v) if re.fullmatch(r"-?\d+", v) else (1, Decimal(0), v)

    unique = sorted(set(values), key=order)
    index = {name: i for i, name in enumerate(unique)}
    return np.array([index[v] for v in values], dtype=np.int64), unique


def load_csv(request: DatasetRequest) -> ImageTable:
    from harness.api import ImageTable

    opts = _options(request.options, CsvOptions, "csv")
    csv_path = Path(str(opts["path"])).expanduser()
    if not csv_path.is_absolute():
        csv_path = request.study_dir / csv_path
    frame, notes = read_csv_table(csv_path)
    image_col = _pick_column(frame, opts.get("image_column"), IMAGE_COLUMNS, "image", csv_path, notes)
    label_col = _pick_column(frame, opts.get("label_column"), LABEL_COLUMNS, "label", csv_path, notes)
    if image_col is None or label_col is None:
        missing = "image_column" if image_col is None else "label_column"
        raise HarnessError(f"{csv_path}: cannot tell which column is the {missing.split('_')[0]}; "
                           f"set dataset.options.{missing} (columns: {', '.join(frame.columns)})")
    empty = frame.index[(frame[image_col] == "") | (frame[label_col] == "")]
    if len(empty):
        raise HarnessError(f"{csv_path}: row {int(empty[0]) + 2} has an empty {image_col!r} or {label_col!r}")
    paths = _resolve_paths(list(frame[image_col]), csv_path.parent, opts.get("images_dir"), opts.get("extension"), notes)
    labels, class_names = _encode_labels(list(frame[label_col]))
    split_col = _pick_column(frame, opts.get("split_column"), SPLIT_COLUMNS, "official split", csv_path, notes)
    official_test = None
    if split_col is not None:
        values = set(frame[split_col])
        test_value = str(opts.get("test_value") or ("test" if values <= {"train", "test"} else "0"))
        official_test = (frame[split_col] == test_value).to_numpy()
        notes.append(f"official test split: rows where {split_col} == {test_value!r} ({int(official_test.sum())} images)")
    group_col = opts.get("group_column")
    if group_col is not None and group_col not in frame.columns:
        raise HarnessError(f"{csv_path}: no group column {group_col!r}{did_you_mean(group_col, frame.columns)}")
    if group_col is not None:
        notes.append(f"folds are grouped by {group_col!r} (dataset option group_column) unless cv.group says otherwise")
    extra = frame.drop(columns=[image_col, label_col])
    return ImageTable(
        paths=paths, labels=labels, class_names=class_names,
        sample_ids=[str(n) for n in frame[image_col]], columns=extra.reset_index(drop=True),
        official_test=official_test, notes=notes, rows=[i + 2 for i in range(len(frame))], group_column=group_col,
    )


def _group_of(group_pattern: re.Pattern[str] | None, name: str, stem: str) -> str:
    match = group_pattern.search(name) if group_pattern else None
    if match is None:
        return stem
    return match.group(1) if match.groups() else match.group(0)


def _compile(pattern: str | None, option: str, dataset: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise HarnessError(f"dataset {dataset!r}: option {option!r} is not a valid regex ({exc})") from None


def _root(path: str, request: DatasetRequest, dataset: str) -> Path:
    root = Path(path).expanduser()
    root = root if root.is_absolute() else request.study_dir / root
    if not root.is_dir():
        raise HarnessError(f"dataset {dataset!r}: folder {root} does not exist; check dataset.options.path")
    return root


def _grouped_table(paths: list[Path], names: list[str], root: Path, group_pattern: re.Pattern[str] | None,
                   notes: list[str]) -> ImageTable:
    import pandas as pd

    from harness.api import ImageTable

    labels, class_names = _encode_labels(names)
    groups = [_group_of(group_pattern, p.name, p.stem) for p in paths]
    if group_pattern is not None:
        unmatched = sum(group_pattern.search(p.name) is None for p in paths)
        notes.append(f"groups: {len(set(groups))} from group_pattern {group_pattern.pattern!r}"
                     + (f" ({unmatched} file(s) did not match: each is its own group)" if unmatched else ""))
    return ImageTable(paths, labels, class_names, [str(p.relative_to(root)) for p in paths],
                      columns=pd.DataFrame({"group": groups}), notes=notes,
                      group_column="group" if group_pattern else None)


MAX_NAMED = 5  # file names quoted in an exclusion note


def _sort_files(files: list[Path], root: Path, exclude: list[str], notes: list[str]) -> list[Path]:
    """The image files; annotations (stem matches an ``exclude`` glob) and files that are not images are
    left out, each kind counted in ``notes`` with its first few names."""
    images, annotations, others = [], [], []
    for file in files:
        if file.suffix.lower() not in EXTENSIONS:
            others.append(file)
        elif any(fnmatch.fnmatchcase(file.stem.lower(), p.lower()) for p in exclude):
            annotations.append(file)
        else:
            images.append(file)

    def named(group: list[Path]) -> str:
        listed = ", ".join(str(f.relative_to(root)) for f in group[:MAX_NAMED])
        return listed + (f", ... ({len(group) - MAX_NAMED} more)" if len(group) > MAX_NAMED else "")

    if annotations:
        notes.append(f"excluded {len(annotations)} annotation file(s) ({', '.join(exclude)}; dataset option "
                     f"exclude): {named(annotations)}")
    if others:
        kinds = ", ".join(sorted({f.suffix.lower() or "no extension" for f in others}))
        notes.append(f"skipped {len(others)} file(s) that are not images ({kinds}): {named(others)}")
    return images


def load_folder(request: DatasetRequest) -> ImageTable:
    opts = FolderOptions.model_validate(_options(request.options, FolderOptions, "folder"))
    group_pattern = _compile(opts.group_pattern, "group_pattern", "folder")
    root = _root(opts.path, request, "folder")
    notes: list[str] = []
    class_of = {file: class_dir.name for class_dir in sorted(p for p in root.iterdir() if p.is_dir())
                for file in sorted(p for p in class_dir.rglob("*") if p.is_file())}
    paths = _sort_files(list(class_of), root, opts.exclude, notes)
    names = [class_of[p] for p in paths]
    loose = sorted(p for p in root.iterdir() if p.is_file())
    if loose:
        notes.append(f"skipped {len(loose)} file(s) beside the class folders (not in a class): "
                     + ", ".join(p.name for p in loose[:MAX_NAMED]) + (" ..." if len(loose) > MAX_NAMED else ""))
    if not paths:
        raise HarnessError(f"{root}: no images found in class sub-folders ({', '.join(EXTENSIONS)})")
    return _grouped_table(paths, names, root, group_pattern, notes)


def load_filename(request: DatasetRequest) -> ImageTable:
    opts = FilenameOptions.model_validate(_options(request.options, FilenameOptions, "filename"))
    pattern = _compile(opts.pattern, "pattern", "filename")
    assert pattern is not None
    if "label" not in pattern.groupindex:
        raise HarnessError("dataset 'filename': pattern needs a named group (?P<label>...)")
    group_pattern = _compile(opts.group_pattern, "group_pattern", "filename")
    root = _root(opts.path, request, "filename")
    paths, names, skipped, notes = [], [], 0, []
    for file in _sort_files(sorted(p for p in root.rglob("*") if p.is_file()), root, opts.exclude, notes):
        match = pattern.search(file.name)
        if not match:
            skipped += 1
            continue
        paths.append(file)
        names.append(match.group("label"))
    if not paths:
        raise HarnessError(f"{root}: no image names match the pattern {pattern.pattern!r}")
    notes += [f"{skipped} files did not match the label pattern and were ignored"] if skipped else []
    return _grouped_table(paths, names, root, group_pattern, notes)


def load_phantom(request: DatasetRequest) -> ImageTable:
    from harness_plugins.datasets.phantom import generate

    opts = PhantomOptions.model_validate(_options(request.options, PhantomOptions, "phantom"))
    csv_path = generate(
        request.cache_dir, classes=opts.classes, per_class=opts.per_class,
        patients=opts.patients or max(4, opts.classes * opts.per_class // 8), difficulty=opts.difficulty,
        size=opts.size, seed=request.seed if opts.seed is None else opts.seed,
    )
    return load_csv(DatasetRequest({"path": str(csv_path)}, request.study_dir, request.cache_dir, request.seed))


@hookimpl
def register_datasets() -> list[DatasetInfo]:
    return [
        DatasetInfo("csv", load_csv, "label CSV (Image_path,Plane; FETAL_PLANES_DB's semicolon CSV + Images/)",
                    options=CsvOptions),
        DatasetInfo("folder", load_folder, "one sub-folder per class (ImageFolder layout)", options=FolderOptions,
                    group_column_hint=GROUP_HINT),
        DatasetInfo("filename", load_filename, "class encoded in the file name (regex option 'pattern')",
                    options=FilenameOptions, group_column_hint=GROUP_HINT),
        DatasetInfo("phantom", load_phantom, "bundled synthetic B-mode ultrasound (fan, speckle, fetal anatomy)",
                    options=PhantomOptions, cheap_index=False),
    ]
