"""The across-dataset report section: the critical-difference diagram and when it is drawn."""

from __future__ import annotations

import base64

from harness.report.across import cd_diagram_png
from harness.stats.across import cd_diagram_reason


def test_cd_diagram_needs_three_arms_and_five_datasets() -> None:
    assert cd_diagram_reason(3, 5) == ""
    assert "4 dataset(s)" in cd_diagram_reason(3, 4)
    assert "3 or more arms" in cd_diagram_reason(2, 10)
    png = base64.b64decode(cd_diagram_png({"base": 2.8, "se": 1.4, "eca": 1.8}, 1.2))
    assert png.startswith(b"\x89PNG")
