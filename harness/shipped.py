"""The example studies shipped with the package (``studies/`` in the source tree, ``harness_studies`` once
installed): ``harness run quickstart`` finds one by bare name, ``harness studies --copy DIR`` copies them out."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import HarnessError

SUFFIX = ".yaml"


def studies_dir() -> Path:
    """The folder of the shipped studies: the installed package, else the source tree's ``studies/``."""
    try:
        import harness_studies
    except ModuleNotFoundError:  # an editable install made before the studies were packaged
        return Path(__file__).resolve().parents[1] / "studies"
    return Path(harness_studies.__file__).parent


def shipped_studies() -> dict[str, Path]:
    """Every shipped study by name (the file's stem)."""
    return {p.stem: p for p in sorted(studies_dir().glob(f"*{SUFFIX}"))}


def resolve_study(path: Path) -> Path:
    """``path`` itself when it exists; a bare name (``quickstart``) that names no file is a shipped study."""
    if path.exists() or path.parent != Path(".") or path.suffix not in ("", SUFFIX):
        return path
    local = path.with_suffix(SUFFIX)
    if local.exists():  # your copy (``harness studies --copy .``) wins over the shipped one
        return local
    shipped = shipped_studies().get(path.stem)
    if shipped is None and not path.suffix:
        from harness.errors import did_you_mean

        raise HarnessError(f"{path}: no such file, and no shipped study of that name"
                           f"{did_you_mean(path.stem, list(shipped_studies()))}; `harness studies` lists them")
    return shipped if shipped is not None else path


def copy_studies(target: Path) -> list[Path]:
    """Copy every shipped study into ``target`` (created if missing); existing files are not overwritten."""
    if target.exists() and not target.is_dir():
        raise HarnessError(f"--copy {target} is a file; give a folder to copy the studies into")
    target.mkdir(parents=True, exist_ok=True)
    clashes = [target / p.name for p in shipped_studies().values() if (target / p.name).exists()]
    if clashes:
        raise HarnessError(f"{', '.join(map(str, clashes))} already exist(s); remove them or copy into another folder")
    return [Path(shutil.copy2(p, target / p.name)) for p in shipped_studies().values()]


def first_comment(path: Path) -> str:
    """The study's first comment line: its one-line description."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""
