"""A non-editable wheel install works from outside the source tree: the templates, the built-in plugins
and the example studies are in the wheel (``harness run quickstart`` needs all three)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "harness", "plugins", "reports", "studies")
SHRINK = ["training.epochs=1", "training.batch_size=8", "cv.folds=2", "dataset.image_size=16",
          "dataset.options.size=16", "dataset.options.per_class=4", "training.threads=1",
          "arms.resnet18.backbone=resnet20", "arms.se-resnet18.backbone=resnet20"]


def _build_wheel(tmp: Path) -> Path:
    """Build from a copy of the sources (nothing written into the checkout); no build isolation when this
    environment's setuptools is new enough, so the test needs no package index."""
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy2)(
            ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (ROOT / name).is_dir() else {}))
    try:
        import setuptools

        isolation = ["--no-build-isolation"] if int(setuptools.__version__.split(".")[0]) >= 77 else []
    except ImportError:
        isolation = []
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *isolation, "-w", str(tmp / "dist"),
                    str(src)], check=True, cwd=tmp)
    return next((tmp / "dist").glob("ablation_harness-*.whl"))


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A new venv holding only the wheel; its dependencies come from this test environment via a .pth file."""
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    ours = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()] or [sysconfig.get_paths()["purelib"]]
    (purelib / "_test_deps.pth").write_text("\n".join(ours) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True)
    return env_dir / "bin"


def test_wheel_install_runs_the_shipped_quickstart_outside_the_source_tree(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    bin_dir = _fresh_venv(tmp_path, wheel)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"

    def harness(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_dir / "harness"), *args], cwd=work, env=env, capture_output=True, text=True,
                              timeout=240)

    where = subprocess.run([str(bin_dir / "python"), "-c", "import harness, harness_plugins, harness_studies; "
                            "print(harness.__file__, harness_plugins.__file__, harness_studies.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout
    assert str(ROOT) not in where and where.count(str(tmp_path / "venv")) == 3, where
    listed = harness("studies")
    assert listed.returncode == 0 and "quickstart" in listed.stdout, listed.stderr
    run = harness("run", "quickstart", "--out", "run", *[a for s in SHRINK for a in ("--set", s)])
    assert run.returncode == 0, run.stderr[-3000:]
    assert (work / "run" / "results.csv").exists() and (work / "run" / "run.log").exists()
    assert "<html" in (work / "run" / "report.html").read_text()[:500].lower()  # the templates are in the wheel
    copied = harness("studies", "--copy", "mine")
    assert copied.returncode == 0 and (work / "mine" / "quickstart.yaml").is_file()
