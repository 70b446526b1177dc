"""What the edge agent's pure core asks its shell to do, in order.

A ``Persist`` always comes first in a step and must be durable before anything after it runs:
that is what makes "written before published" and "recorded before the session begins" hold.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from vendgate.edge._records import Commit
from vendgate.edge._settings import Settings

__all__ = [
    "Action",
    "ApplySettings",
    "CancelSession",
    "Log",
    "Persist",
    "Publish",
    "SetWill",
    "StartSession",
]


@dataclass(frozen=True, slots=True)
class Persist:
    commit: Commit


@dataclass(frozen=True, slots=True)
class Publish:
    """Send ``payload`` on ``{prefix}/{machine}/{name}``; QoS and retain follow the topic kind."""

    name: str  # wire name: "evt/started", "status", "telemetry"
    payload: bytes
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class SetWill:
    """The last will (retained ``status`` offline) to register before connecting."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class StartSession:
    """Ask the reader to offer ``funds`` (minor units) to the VMC, with BEGIN SESSION."""

    vend_id: str
    funds: int


@dataclass(frozen=True, slots=True)
class CancelSession:
    vend_id: str | None


@dataclass(frozen=True, slots=True)
class ApplySettings:
    """Settings changed (``cmd/config``, or loaded on start): apply to the reader and timers."""

    settings: Settings


@dataclass(frozen=True, slots=True)
class Log:
    """One structured log line: ``event`` names what happened, ``fields`` give the details."""

    level: int
    event: str
    fields: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def info(cls, event: str, **fields: object) -> Log:
        return cls(logging.INFO, event, fields)

    @classmethod
    def warning(cls, event: str, **fields: object) -> Log:
        return cls(logging.WARNING, event, fields)

    @classmethod
    def debug(cls, event: str, **fields: object) -> Log:
        return cls(logging.DEBUG, event, fields)


Action: TypeAlias = Persist | Publish | SetWill | StartSession | CancelSession | ApplySettings | Log
