"""Settings the cloud may change at run time with ``cmd/config``; they survive restarts.

Each has a default (from the command line or environment) and a range; ``updated()`` applies a
``settings`` object from the wire, keeping what is valid and naming what is not.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from vendgate.edge._records import JsonValue

__all__ = ["SETTING_RANGES", "Settings"]

SETTING_RANGES: Mapping[str, tuple[float, float]] = {
    "selection_timeout_s": (5.0, 600.0),  # how long a customer may take to choose
    "resend_interval_s": (1.0, 3600.0),  # re-send unacknowledged events this often
    "telemetry_interval_s": (5.0, 86400.0),  # heartbeat period
}


@dataclass(frozen=True, slots=True)
class Settings:
    selection_timeout_s: float = 60.0
    resend_interval_s: float = 15.0
    telemetry_interval_s: float = 60.0

    def updated(
        self, changes: Mapping[str, JsonValue]
    ) -> tuple[Settings, dict[str, float], list[str]]:
        """``(new settings, the changes applied, a problem per key refused)``."""
        applied: dict[str, float] = {}
        problems: list[str] = []
        for key, value in changes.items():
            problem = _problem(key, value)
            if problem is None:
                applied[key] = float(value)
            else:
                problems.append(problem)
        return dataclasses.replace(self, **applied), applied, problems


def _problem(key: str, value: JsonValue) -> str | None:
    limits = SETTING_RANGES.get(key)
    if limits is None:
        return f"{key}: unknown setting"
    # bool is an int subclass, and true is not a number of seconds.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"{key}: must be a number, got {value!r}"
    low, high = limits
    if not low <= value <= high:
        return f"{key}: must be between {low:g} and {high:g}, got {value!r}"
    return None
