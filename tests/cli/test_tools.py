from __future__ import annotations

import pytest

from harness.cli.main import main


def test_plugins_and_list_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "models 0.1.0" in out and "backbones:" in out
    assert main(["list", "attention"]) == 0
    out = capsys.readouterr().out
    for name in ("none", "se", "eca", "cbam", "ese", "gc"):
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert main(["list", "backbones", "se_resnet*"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("se_resnet110")


def test_listing_plugins_does_not_import_torch() -> None:
    """`harness --help`, `plugins` and `list` stay fast: torch, timm and optuna load only when needed."""
    import subprocess
    import sys

    code = ("import sys; from harness.cli.main import main; main(['plugins']); main(['list', 'attention']); "
            "heavy = [m for m in ('torch', 'timm', 'optuna', 'pandas') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
