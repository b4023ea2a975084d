"""The built-in dataset plugins: the CSV loader's errors name the column, the row or the encoding."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness_plugins.datasets.plugin import load_csv

from harness.contracts import DatasetRequest
from harness.errors import HarnessError


@pytest.mark.parametrize("text,options,message", [
    ("", {}, "the CSV is empty"),
    ("Image_path,Plane\n", {}, "has a header but no rows"),
    ("Image_path,Plane\n0.png,a\n", {"label_column": "Plnae"}, "no column 'Plnae' for the label \\(did you mean 'Plane'"),
    ("Image_path,Plane\n0.png,a\n0.png,b\n", {}, "appear more than once"),
])
def test_csv_errors(tmp_path: Path, text: str, options: dict, message: str) -> None:
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(HarnessError, match=message):
        load_csv(DatasetRequest({"path": str(tmp_path / "labels.csv"), **options}, tmp_path, tmp_path, 0))


def test_non_utf8_csv(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_bytes("Image_path,Plane\n0.png,Fötal\n".encode("latin-1"))
    with pytest.raises(HarnessError, match="not UTF-8 .*re-save the CSV as UTF-8"):
        load_csv(DatasetRequest({"path": str(tmp_path / "labels.csv")}, tmp_path, tmp_path, 0))
