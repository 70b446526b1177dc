"""What the edge agent remembers across restarts, as plain frozen values.

The core changes its state only through a ``Commit`` (events to send, events acked, vend records,
the sequence counter, settings, the boot), and a store writes each commit in one transaction.
A ``Snapshot`` is what a store gives back on start: everything needed to rebuild the core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeAlias

from vendgate.protocol import Money
from vendgate.protocol.mqtt import DispensedItem

__all__ = [
    "Approval",
    "Commit",
    "JsonValue",
    "OutboxEvent",
    "Snapshot",
    "VendPhase",
    "VendRecord",
]

JsonValue: TypeAlias = Any
"""A value JSON can carry (settings are stored as JSON)."""


class VendPhase(StrEnum):
    """Where a vend (one ``authorized`` vend id) stands on this machine."""

    PENDING = "pending"  # BEGIN SESSION asked of the reader, the board has not confirmed it yet
    OPEN = "open"  # a session runs on the board
    ENDED = "ended"  # the session is over (``evt/ended`` written)
    REJECTED = "rejected"  # never started (``evt/rejected`` written)

    @property
    def is_active(self) -> bool:
        return self in (VendPhase.PENDING, VendPhase.OPEN)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event exactly as it goes on the wire: re-sends are byte for byte the same."""

    id: str
    seq: int
    name: str  # wire name, e.g. "evt/dispensed"
    vend_id: str | None
    payload: bytes
    created: datetime


@dataclass(frozen=True, slots=True)
class Approval:
    """The reader approved a vend; the board has not said yet whether the item dropped."""

    item: int
    price: Money
    vmc_price: Money | None = None  # what the VMC asked (None in records of older agents)


@dataclass(frozen=True, slots=True)
class VendRecord:
    """Everything about one vend id: enough to finish its report after a crash."""

    vend_id: str
    phase: VendPhase
    amount: Money
    updated: datetime
    lines: tuple[DispensedItem, ...] = ()
    in_flight: Approval | None = None
    # The latest outcome event (started, ended or rejected), re-published when the cloud sends
    # the same vend id again.
    outcome: OutboxEvent | None = None


@dataclass(frozen=True, slots=True)
class Commit:
    """One atomic change of the durable state; empty fields change nothing."""

    events: tuple[OutboxEvent, ...] = ()
    acked: tuple[str, ...] = ()
    vends: tuple[VendRecord, ...] = ()
    last_seq: int | None = None
    settings: Mapping[str, JsonValue] = field(default_factory=dict)
    boot_id: str | None = None

    def is_empty(self) -> bool:
        return not (
            self.events
            or self.acked
            or self.vends
            or self.settings
            or self.last_seq is not None
            or self.boot_id is not None
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The durable state as loaded on start."""

    pending: tuple[OutboxEvent, ...] = ()  # not acked yet, in seq order
    vends: tuple[VendRecord, ...] = ()
    last_seq: int = 0
    settings: Mapping[str, JsonValue] = field(default_factory=dict)
    boots: int = 0  # how many boots this data directory has seen
