"""Structured log lines: one line per event, ``key=value``, machine id and vend id first.

``event=vend.dispensed machine_id=m1 vend_id=vs_01HX item=3 price="20.00 NOK" success=true``
greps well and parses with any logfmt reader.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping

from vendgate.edge._actions import Log

__all__ = ["format_line", "log_event"]

logger = logging.getLogger("vendgate.edge")

_BARE = re.compile(r"[A-Za-z0-9_.:/@+-]+")
_FIRST = ("machine_id", "vend_id")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "-"
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def format_line(event: str, fields: Mapping[str, object]) -> str:
    ordered = [key for key in _FIRST if key in fields] + sorted(
        key for key in fields if key not in _FIRST
    )
    return " ".join([f"event={event}", *(f"{key}={_value(fields[key])}" for key in ordered)])


def log_event(machine_id: str, log: Log, target: logging.Logger = logger) -> None:
    if target.isEnabledFor(log.level):
        target.log(log.level, format_line(log.event, {"machine_id": machine_id, **log.fields}))
