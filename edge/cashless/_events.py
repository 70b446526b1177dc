"""What the reader tells the agent: frozen events, in the order things happened on the bus.

Amounts (``funds``, ``price``, ``vmc_price``) are wire units; ``CashlessConfig.to_minor``
converts them (with the default config they already are minor units). ``price`` in
``ApprovalSent``/``VendSucceeded``/``VendFailed`` is always the amount our VEND APPROVED carried
(the planogram's price, or the VMC's in ``vmc`` mode): the board is trusted for *what* it
dispensed, never for how much may be charged. ``vmc_price`` is what the VMC asked in its VEND
REQUEST, reported so the cloud can see a machine whose own prices disagree with the planogram.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vendgate.protocol.mqtt import EndReason

DenyReason = Literal[
    "exceeds_credit", "session_ending", "no_planogram", "not_in_planogram", "price_unrepresentable"
]
"""Why a VEND REQUEST was denied: the price is more than the credit left, the session is ending,
no planogram has arrived yet, the item is not in it, or its price is no whole number of wire
units (or too large for the 16-bit VEND APPROVED)."""

PriceMode = Literal["planogram", "vmc"]
"""Who sets the price of a vend: the planogram the cloud sent, or the VMC's own VEND REQUEST."""


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """``begin_session`` queued BEGIN SESSION; ``funds`` is the credit in wire units."""

    funds: int


@dataclass(frozen=True, slots=True)
class VendRequested:
    price: int
    item: int


@dataclass(frozen=True, slots=True)
class ApprovalSent:
    """We answered VEND APPROVED: ``price`` is the amount it carried, ``vmc_price`` what the VMC
    asked."""

    price: int
    item: int
    vmc_price: int | None = None


@dataclass(frozen=True, slots=True)
class DenialSent:
    """We answered VEND DENIED to a VEND REQUEST for ``price`` (the VMC's) and ``item``."""

    price: int
    item: int
    reason: DenyReason


@dataclass(frozen=True, slots=True)
class VendSucceeded:
    """The VMC reported VEND SUCCESS, or reset between VEND APPROVED and it (spec §7.4.7)."""

    item: int
    price: int
    vmc_price: int | None = None


@dataclass(frozen=True, slots=True)
class VendFailed:
    """The approved vend dispensed nothing (VEND FAILURE, or VEND CANCEL after approval)."""

    item: int
    price: int
    vmc_price: int | None = None


@dataclass(frozen=True, slots=True)
class SessionEnded:
    reason: EndReason


@dataclass(frozen=True, slots=True)
class BoardReset:
    """The VMC sent RESET: the reader is Inactive until the VMC initialises it again."""


@dataclass(frozen=True, slots=True)
class LinkLost:
    """No valid block from the VMC for ``link_lost_after_s``."""


@dataclass(frozen=True, slots=True)
class LinkRestored:
    """The VMC is talking to us (again): also sent the first time the link comes up."""


@dataclass(frozen=True, slots=True)
class ReaderEnabled:
    pass


@dataclass(frozen=True, slots=True)
class ReaderDisabled:
    pass


ReaderEvent = (
    SessionStarted
    | VendRequested
    | ApprovalSent
    | DenialSent
    | VendSucceeded
    | VendFailed
    | SessionEnded
    | BoardReset
    | LinkLost
    | LinkRestored
    | ReaderEnabled
    | ReaderDisabled
)


class NeedData:
    """``next_event()`` has nothing more until bytes, a timer or a call arrive (h11's sentinel)."""

    _instance: NeedData | None = None

    def __new__(cls) -> NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()
