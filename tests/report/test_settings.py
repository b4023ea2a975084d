"""The settings report's sensitivity plot: one point per arm and setting, settings along x in study order."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from harness.report.settings import sensitivity_png


def _width(analysis: dict[str, Any]) -> int:
    return int(Image.open(io.BytesIO(base64.b64decode(sensitivity_png(analysis)))).size[0])


def test_the_plot_widens_with_the_settings_and_skips_a_missing_score() -> None:
    def analysis(settings: list[str]) -> dict[str, Any]:
        scores = {s: {"plain": 0.7, "se": 0.75} for s in settings}
        scores[settings[-1]].pop("se")  # se has no score in the last setting: left out, not drawn at 0
        intervals = {s: {"plain": {"low": 0.65, "high": 0.75}} for s in settings}
        return {"settings": settings, "scores": scores, "intervals": intervals, "axis": "lr", "metric": "accuracy"}

    assert _width(analysis([f"lr-{i}" for i in range(6)])) > 1.5 * _width(analysis(["lr-high", "lr-low"]))
