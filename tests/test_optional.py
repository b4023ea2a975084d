"""Optional extras: a missing one says which extra installs it."""

from __future__ import annotations

import sys

import pytest


def test_missing_captum_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.optional import MissingExtra, optional_import

    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(MissingExtra, match=r"Grad-CAM needs captum, which is not installed: "
                                           r"pip install 'ablation-harness\[gradcam\]'"):
        optional_import("captum.attr", "gradcam", "Grad-CAM")
