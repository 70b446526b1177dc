"""What happens to the edge agent: the inputs its pure core is fed, one at a time.

The shell turns MQTT traffic, reader events and timers into these; the core answers each with
a list of actions (``_actions``). Amounts from the board are integers in minor units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from vendgate.protocol.mqtt import EndReason

__all__ = [
    "BeginFailed",
    "Board",
    "Booted",
    "CloudPresenceArrived",
    "CommandArrived",
    "Connected",
    "Connecting",
    "Disconnected",
    "Input",
    "ResendDue",
    "SessionClosed",
    "SessionOpened",
    "ShuttingDown",
    "TelemetryDue",
    "VendApproved",
    "VendResult",
]


@dataclass(frozen=True, slots=True)
class Board:
    """The reader as the shell sees it at the moment an input is handled."""

    state: str = "inactive"  # the reader state name: inactive, disabled, enabled, session_idle...
    link_up: bool = False
    can_begin_session: bool = False


@dataclass(frozen=True, slots=True)
class Booted:
    """The process started: a fresh boot id; the core finishes what the last boot left open."""

    boot_id: str
    versions: dict[str, str]


@dataclass(frozen=True, slots=True)
class Connecting:
    """The shell is about to make a connect attempt: its last will must be set first."""


@dataclass(frozen=True, slots=True)
class Connected:
    """The MQTT session is up (CONNACK accepted)."""

    session_present: bool = False


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ShuttingDown:
    """A clean stop: say ``offline`` ourselves (the last will only fires on unclean ends)."""


@dataclass(frozen=True, slots=True)
class CommandArrived:
    """A message on ``{prefix}/{machine}/cmd/{name}``, not decoded yet."""

    name: str
    payload: bytes
    board: Board
    retained: bool = False
    machine_id: str | None = None  # from the topic; None if the shell already checked it


@dataclass(frozen=True, slots=True)
class CloudPresenceArrived:
    """A message on ``{prefix}/cloud``, not decoded yet: a cloud replica came or went."""

    payload: bytes
    retained: bool = False


@dataclass(frozen=True, slots=True)
class BeginFailed:
    """The reader refused BEGIN SESSION for ``vend_id`` (not enabled, or busy)."""

    vend_id: str
    board: Board
    error: str


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """The board accepted BEGIN SESSION: a session with ``funds`` is running."""

    funds: int


@dataclass(frozen=True, slots=True)
class VendApproved:
    """The reader approved a VEND REQUEST: the board is about to dispense ``item``.

    ``price`` is the amount approved (charged if it drops), ``vmc_price`` what the VMC asked."""

    item: int
    price: int
    vmc_price: int | None = None


@dataclass(frozen=True, slots=True)
class VendResult:
    """VEND SUCCESS (``success``) or VEND FAILURE for ``item`` at the approved ``price``."""

    item: int
    price: int
    success: bool
    vmc_price: int | None = None


@dataclass(frozen=True, slots=True)
class SessionClosed:
    reason: EndReason


@dataclass(frozen=True, slots=True)
class ResendDue:
    """Time to re-send events the cloud has not acknowledged (and check stuck sessions)."""

    board: Board = field(default_factory=Board)


@dataclass(frozen=True, slots=True)
class TelemetryDue:
    uptime_s: int
    board: Board
    extra: dict[str, object] = field(default_factory=dict)


Input: TypeAlias = (
    Booted
    | Connecting
    | Connected
    | Disconnected
    | ShuttingDown
    | CommandArrived
    | CloudPresenceArrived
    | BeginFailed
    | SessionOpened
    | VendApproved
    | VendResult
    | SessionClosed
    | ResendDue
    | TelemetryDue
)
