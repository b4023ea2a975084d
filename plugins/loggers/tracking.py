"""What the built-in loggers share: an arm's nested settings as flat ``key.sub: scalar`` pairs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"training": {"optimizer": {"lr": 0.1}}}`` -> ``{"training.optimizer.lr": 0.1}``; a value that is
    not a number, string or bool (a list, None) becomes its JSON text, so every tracker accepts it."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, default=str)
    return flat
