"""Named values that MDB cashless messages carry in their fields (states, error classes, flags)."""

from __future__ import annotations

import enum


class ReaderState(enum.IntEnum):
    """Reader states (§7.2) as COMMAND OUT OF SEQUENCE reports them on level 2+."""

    INACTIVE = 1
    DISABLED = 2
    ENABLED = 3
    SESSION_IDLE = 4
    VEND = 5
    REVALUE = 6
    NEGATIVE_VEND = 7


class MalfunctionError(enum.IntEnum):
    """The ``xxxx`` class in a MALFUNCTION error byte ``xxxxyyyy`` (§7.4.4); ``yyyy`` is detail."""

    PAYMENT_MEDIA = 0b0000
    INVALID_PAYMENT_MEDIA = 0b0001
    TAMPER = 0b0010
    MANUFACTURER_TRANSIENT = 0b0011
    COMMUNICATIONS = 0b0100
    REQUIRES_SERVICE = 0b0101
    MANUFACTURER_NON_TRANSIENT = 0b0111
    READER_FAILURE = 0b1000
    COMMUNICATIONS_FATAL = 0b1001
    PAYMENT_MEDIA_JAMMED = 0b1010
    MANUFACTURER_NON_FUNCTIONAL = 0b1011
    REFUND_ERROR = 0b1100
    """The reader could not refund after VEND FAILURE: the customer's credit is lost."""


class ReaderOptions(enum.IntFlag):
    """READER CONFIG DATA Z8 miscellaneous options (§7.4.2)."""

    CAN_REFUND = 1 << 0
    MULTIVEND = 1 << 1
    HAS_DISPLAY = 1 << 2
    CASH_SALE = 1 << 3


class Level3Options(enum.IntFlag):
    """Level 3 option bits of PERIPHERAL ID Z31-Z34 and EXPANSION ENABLE OPTIONS (§7.4.22)."""

    FILE_TRANSPORT = 1 << 0
    MONEY_32BIT = 1 << 1
    MULTI_CURRENCY = 1 << 2
    NEGATIVE_VEND = 1 << 3
    DATA_ENTRY = 1 << 4
    ALWAYS_IDLE = 1 << 5
    """VEND REQUEST is allowed from Enabled without BEGIN SESSION ("selection first")."""
