"""MDB cashless commands, VMC -> cashless device (§7.4), and ``COMMANDS``, the codec's table.

Each class names its ``command`` and ``subcommand``; shared body shapes come from ``_bodies``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from ._base import MAX_COMMAND_DATA, Command
from ._bodies import AmountBody, IdentityBody, RawDataBody, UintFields
from ._wire import Cursor, pack_money, pack_uint

MAX_VEND_ITEM = 0xFFFE
"""The largest item number a VEND REQUEST names: FFFF means "item undefined"."""


@dataclass(frozen=True, slots=True)
class Reset(Command):
    name = "RESET"
    command = 0


@dataclass(frozen=True, slots=True)
class SetupConfig(UintFields, Command):
    """SETUP Config Data: the VMC's level and display; the reader answers READER CONFIG DATA."""

    name = "SETUP_CONFIG"
    command = 1
    subcommand = 0x00
    sizes = (1, 1, 1, 1)
    feature_level: int
    display_columns: int = 0
    display_rows: int = 0
    display_info: int = 0


@dataclass(frozen=True, slots=True)
class SetupPrices(Command):
    """SETUP Max/Min Prices; with ``currency`` it is the level 3 expanded form (4-byte prices)."""

    name = "SETUP_PRICES"
    command = 1
    subcommand = 0x01
    bcd_fields = frozenset({"currency"})
    max_price: int
    min_price: int
    currency: int | None = None

    def encode_body(self) -> bytes:
        wide = self.currency is not None
        out = pack_money(self.max_price, wide, f"{self.name} max_price")
        out += pack_money(self.min_price, wide, f"{self.name} min_price")
        if self.currency is not None:
            out += pack_uint(self.currency, 2, f"{self.name} currency")
        return out

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        wide = len(data) == 10
        msg = cls(c.uint(4), c.uint(4), c.uint(2)) if wide else cls(c.uint(2), c.uint(2))
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class Poll(Command):
    name = "POLL"
    command = 2


@dataclass(frozen=True, slots=True)
class VendRequest(Command):
    """VEND REQUEST: the customer chose ``item`` (0xFFFF = undefined) at ``price``."""

    name = "VEND_REQUEST"
    command = 3
    subcommand = 0x00
    price: int
    item: int
    expanded: bool = False

    def encode_body(self) -> bytes:
        price = pack_money(self.price, self.expanded, f"{self.name} price")
        return price + pack_uint(self.item, 2, f"{self.name} item")

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        wide = len(data) == 6
        msg = cls(c.uint(4 if wide else 2), c.uint(2), expanded=wide)
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class VendCancel(Command):
    name = "VEND_CANCEL"
    command = 3
    subcommand = 0x01


@dataclass(frozen=True, slots=True)
class VendSuccess(UintFields, Command):
    name = "VEND_SUCCESS"
    command = 3
    subcommand = 0x02
    sizes = (2,)
    item: int


@dataclass(frozen=True, slots=True)
class VendFailure(Command):
    name = "VEND_FAILURE"
    command = 3
    subcommand = 0x03


@dataclass(frozen=True, slots=True)
class SessionComplete(Command):
    name = "SESSION_COMPLETE"
    command = 3
    subcommand = 0x04


@dataclass(frozen=True, slots=True)
class CashSale(Command):
    """CASH SALE (audit only). Item bits: b15 free, b14 test, b13 negative, b12 token vend."""

    name = "CASH_SALE"
    command = 3
    subcommand = 0x05
    price: int
    item: int

    def encode_body(self) -> bytes:
        # pack_money, not pack_uint: a too-large price gets the "use expanded" hint.
        price = pack_money(self.price, False, f"{self.name} price")
        return price + pack_uint(self.item, 2, f"{self.name} item")

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        msg = cls(c.uint(2), c.uint(2))
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class ReaderDisable(Command):
    name = "READER_DISABLE"
    command = 4
    subcommand = 0x00


@dataclass(frozen=True, slots=True)
class ReaderEnable(Command):
    name = "READER_ENABLE"
    command = 4
    subcommand = 0x01


@dataclass(frozen=True, slots=True)
class ReaderCancel(Command):
    name = "READER_CANCEL"
    command = 4
    subcommand = 0x02


@dataclass(frozen=True, slots=True)
class RevalueRequest(AmountBody, Command):
    name = "REVALUE_REQUEST"
    command = 5
    subcommand = 0x00


@dataclass(frozen=True, slots=True)
class RevalueLimitRequest(Command):
    name = "REVALUE_LIMIT_REQUEST"
    command = 5
    subcommand = 0x01


@dataclass(frozen=True, slots=True)
class ExpansionRequestId(IdentityBody, Command):
    """EXPANSION Request ID: the VMC introduces itself; the reader answers PERIPHERAL ID."""

    name = "EXPANSION_REQUEST_ID"
    command = 7
    subcommand = 0x00


@dataclass(frozen=True, slots=True)
class ExpansionEnableOptions(UintFields, Command):
    """EXPANSION Enable Options (level 3): the VMC turns on ``Level3Options`` bits."""

    name = "EXPANSION_ENABLE_OPTIONS"
    command = 7
    subcommand = 0x04
    sizes = (4,)
    options: int


@dataclass(frozen=True, slots=True)
class ExpansionDiagnostics(RawDataBody, Command):
    name = "EXPANSION_DIAGNOSTICS"
    command = 7
    subcommand = 0xFF
    max_data = MAX_COMMAND_DATA - 1


COMMANDS: tuple[type[Command], ...] = (
    Reset,
    SetupConfig,
    SetupPrices,
    Poll,
    VendRequest,
    VendCancel,
    VendSuccess,
    VendFailure,
    SessionComplete,
    CashSale,
    ReaderDisable,
    ReaderEnable,
    ReaderCancel,
    RevalueRequest,
    RevalueLimitRequest,
    ExpansionRequestId,
    ExpansionEnableOptions,
    ExpansionDiagnostics,
)
