"""The built-in datasets' options as pydantic models: one source for loading, ``validate`` and the docs' component-options page.

Grouping is declared one way: ``cv.group`` names a column of the dataset's table. A CSV's columns are
its own; ``folder`` and ``filename`` make a column ``group`` from ``group_pattern``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

GROUP_PATTERN_HELP = ("regex on the file name whose first group is the source (patient, video), e.g. "
                      r"`^(.+)_frame\d+`; makes the column `group`, and the folds are grouped by it")


ANNOTATION_PATTERNS = ["*_mask*", "*_seg*", "*_gt*", "*_label*"]
EXCLUDE_HELP = ("glob patterns on the file stem (case-insensitive) of files that are annotations, not images, "
                "e.g. `name_mask.png` beside `name.png`; excluded and counted in the data notes ([] keeps every image)")


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CsvOptions(_Options):
    path: str = Field(description="the label CSV (absolute or relative to the study file)")
    image_column: str | None = Field(None, description="image path column (default: guessed, e.g. Image_path)")
    label_column: str | None = Field(None, description="class column (default: guessed, e.g. Plane, label)")
    group_column: str | None = Field(None, description="old spelling of cv.group; use cv.group")
    split_column: str | None = Field(None, description="official train/test column (default: guessed: Train, split)")
    test_value: str | None = Field(None, description="value of split_column that marks test rows (default: 'test' or '0')")
    images_dir: str | None = Field(None, description="folder the image names are relative to (default: the CSV's; 'Images/' guessed)")
    extension: str | None = Field(None, description="extension added to names without one (default: guessed)")


class FolderOptions(_Options):
    path: str = Field(description="a folder with one sub-folder per class")
    group_pattern: str | None = Field(None, description=GROUP_PATTERN_HELP)
    exclude: list[str] = Field(default_factory=lambda: list(ANNOTATION_PATTERNS), description=EXCLUDE_HELP)


class FilenameOptions(_Options):
    path: str = Field(".", description="folder searched recursively for images")
    pattern: str = Field(r"^(?P<label>[^_]+)_", description="regex with a (?P<label>...) group for the class")
    group_pattern: str | None = Field(None, description=GROUP_PATTERN_HELP)
    exclude: list[str] = Field(default_factory=lambda: list(ANNOTATION_PATTERNS), description=EXCLUDE_HELP)


class PhantomOptions(_Options):
    classes: int = Field(4, ge=2, le=4, description="number of anatomies (head, abdomen, femur, thorax)")
    per_class: int = Field(60, ge=1, description="images per class")
    patients: int | None = Field(None, ge=1, description="simulated patients (column 'patient'; default classes*per_class/8, at least 4)")
    difficulty: float = Field(0.3, ge=0, le=1, description="0 easy .. 1 hard")
    size: int = Field(64, ge=8, description="rendered image size in pixels")
    seed: int | None = Field(None, description="generator seed (default: the study's seed)")
