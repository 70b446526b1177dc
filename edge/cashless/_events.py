"""What the reader tells the agent: frozen events, in the order things happened on the bus.

Amounts (``funds``, ``price``) are wire units; ``CashlessConfig.to_minor`` converts them (with
the default config they already are minor units). ``price`` in ``VendSucceeded``/``VendFailed``
is always the price of the VEND REQUEST we approved: the board is trusted for *what* it
dispensed, never for how much may be charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EndReason = Literal["completed", "timeout", "cancelled", "board_reset", "link_lost"]
"""Why a session ended: the VMC closed it (``completed``, also when the customer pressed cancel
on the keypad), our selection timeout, ``cancel_session()``, a RESET from the VMC, or the board
went silent."""

DenyReason = Literal["exceeds_credit", "session_ending"]


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """``begin_session`` queued BEGIN SESSION; ``funds`` is the credit in wire units."""

    funds: int


@dataclass(frozen=True, slots=True)
class VendRequested:
    price: int
    item: int


@dataclass(frozen=True, slots=True)
class VendApproved:
    price: int
    item: int


@dataclass(frozen=True, slots=True)
class VendDenied:
    price: int
    item: int
    reason: DenyReason


@dataclass(frozen=True, slots=True)
class VendSucceeded:
    """The VMC reported VEND SUCCESS, or reset between VEND APPROVED and it (spec §7.4.7)."""

    item: int
    price: int


@dataclass(frozen=True, slots=True)
class VendFailed:
    """The approved vend dispensed nothing (VEND FAILURE, or VEND CANCEL after approval)."""

    item: int
    price: int


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
    | VendApproved
    | VendDenied
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
