"""What happens to the edge agent: the inputs its pure core is fed, one at a time.

The shell turns MQTT traffic, reader events and timers into these; the core answers each with
a list of actions (``_actions``). Reader events that carry amounts become ``SessionFunded``,
``ItemApproved`` and ``ItemResult``, in minor units (the reader's own events count wire units);
the reader's ``SessionEnded`` carries none and is an input as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from vendgate.edge.cashless import SessionEnded

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
    "ItemApproved",
    "ItemResult",
    "ResendDue",
    "SessionEnded",
    "SessionFunded",
    "ShuttingDown",
    "TelemetryDue",
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
class SessionFunded:
    """The reader's ``SessionStarted``: a session with ``funds`` (minor units) is running."""

    funds: int


@dataclass(frozen=True, slots=True)
class ItemApproved:
    """The reader's ``ApprovalSent``: the board is about to dispense ``item``.

    ``price`` is the amount approved (charged if it drops), ``vmc_price`` what the VMC asked;
    minor units."""

    item: int
    price: int
    vmc_price: int | None = None


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The reader's ``VendSucceeded`` (``success``) or ``VendFailed`` for ``item`` at the
    approved ``price``; minor units."""

    item: int
    price: int
    success: bool
    vmc_price: int | None = None


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
    | SessionFunded
    | ItemApproved
    | ItemResult
    | SessionEnded
    | ResendDue
    | TelemetryDue
)
