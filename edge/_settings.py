"""Settings the cloud may change at run time with ``cmd/config``; they survive restarts.

Each has a default (from the command line or environment) and a rule; ``updated()`` applies a
``settings`` object from the wire, keeping what is valid and naming what is not. A refused
value changes nothing: the setting keeps its previous value.

- ``selection_timeout_s``, ``resend_interval_s``, ``telemetry_interval_s``: numbers in a range.
- ``price_mode``: ``"planogram"`` (the default: the cloud's planogram prices every vend) or
  ``"vmc"`` (the machine's own prices are approved).
- ``planogram``: the cloud's price list, ``[{"item": 11, "price": 2500}, ...]`` (MDB item
  numbers, prices in minor units of the machine's currency), replacing the previous one whole.
  Until the first one arrives it is ``None``, and in planogram mode every vend is refused: the
  edge never approves a price it does not know.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast, get_args

from vendgate.edge._records import JsonValue
from vendgate.edge.cashless import PriceMode
from vendgate.protocol import MAX_WIRE_VALUE
from vendgate.protocol.mdb import MAX_VEND_ITEM

__all__ = ["PRICE_MODES", "SETTING_RANGES", "Settings"]

SETTING_RANGES: Mapping[str, tuple[float, float]] = {
    "selection_timeout_s": (5.0, 600.0),  # how long a customer may take to choose
    "resend_interval_s": (1.0, 3600.0),  # re-send unacknowledged events this often
    "telemetry_interval_s": (5.0, 86400.0),  # heartbeat period
}
PRICE_MODES: tuple[str, ...] = get_args(PriceMode)


class SettingError(ValueError):
    """A value the edge refuses; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Settings:
    selection_timeout_s: float = 60.0
    resend_interval_s: float = 15.0
    telemetry_interval_s: float = 60.0
    price_mode: PriceMode = "planogram"
    planogram: Mapping[int, int] | None = None
    """Item -> price in minor units; None until the cloud has sent one."""

    def updated(
        self, changes: Mapping[str, JsonValue]
    ) -> tuple[Settings, dict[str, JsonValue], list[str]]:
        """``(new settings, the changes applied as given, a problem per key refused)``."""
        values: dict[str, Any] = {}
        applied: dict[str, JsonValue] = {}
        problems: list[str] = []
        for key, value in changes.items():
            try:
                values[key] = _parse(key, value)
            except SettingError as error:
                problems.append(f"{key}: {error}")
            else:
                applied[key] = value
        return dataclasses.replace(self, **values), applied, problems


def _parse(key: str, value: JsonValue) -> object:
    if key == "price_mode":
        return _price_mode(value)
    if key == "planogram":
        return _planogram(value)
    limits = SETTING_RANGES.get(key)
    if limits is None:
        raise SettingError("unknown setting")
    # bool is an int subclass, and true is not a number of seconds.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingError(f"must be a number, got {value!r}")
    low, high = limits
    if not low <= value <= high:
        raise SettingError(f"must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _price_mode(value: JsonValue) -> PriceMode:
    if value not in PRICE_MODES or not isinstance(value, str):
        raise SettingError(f"must be one of {', '.join(PRICE_MODES)}, got {value!r}")
    return cast(PriceMode, value)


def _planogram(value: JsonValue) -> dict[int, int]:
    if not isinstance(value, list):
        raise SettingError(f'must be a list of {{"item": N, "price": N}}, got {value!r}')
    prices: dict[int, int] = {}
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise SettingError(f"[{index}] must be an object, got {entry!r}")
        item = _whole(entry.get("item"), 0, MAX_VEND_ITEM, f"[{index}].item")
        price = _whole(entry.get("price"), 1, MAX_WIRE_VALUE, f"[{index}].price")
        if item in prices:
            raise SettingError(f"[{index}].item {item} is listed twice")
        prices[item] = price
    return prices


def _whole(value: object, low: int, high: int, where: str) -> int:
    # type() rather than isinstance(): true is not an item number, 25.0 not a price.
    if type(value) is not int or not low <= value <= high:
        raise SettingError(f"{where} must be an integer {low}..{high}, got {value!r}")
    return value
