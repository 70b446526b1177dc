"""Typed, frozen MDB cashless messages (spec §7.4), one class per command or response.

Commands travel VMC -> cashless device (CD); responses travel CD -> VMC; ``Ack``, ``Nak`` and
``Ret`` are the lone control bytes. Each class knows its identity on the wire (``command`` and
``subcommand`` for commands, ``code`` for responses) and how to pack and parse the bytes after
that identity; addressing, the mode bits and the checksum belong to ``_codec``.

Money fields (``price``, ``funds``, ``amount``, ``max_price``...) are the wire's *scaled*
integers (spec §7.4.2: actual = P x scale factor x 10^-decimal places). ``expanded=True`` selects
the level 3 32-bit money form; it exists only where the block length tells the two forms apart.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import ClassVar, Self

from ._errors import LocalMdbError
from ._wire import Cursor, bcd_digits, pack_ascii, pack_data, pack_money, pack_text, pack_uint

JsonValue = int | str | bool | None

# Data bytes left for a message body once the address/code byte and the CHK are counted (§2.2).
MAX_COMMAND_DATA = 33
MAX_RESPONSE_DATA = 34
DISPLAY_TEXT_MAX = 32


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


@dataclass(frozen=True, slots=True)
class Dialect:
    """What the VMC and reader negotiated, so multi-message replies split unambiguously.

    ``level`` is the VMC's feature level from SETUP (None: unknown, e.g. in a capture analyser:
    every form is tried, longest first). ``expanded`` is level 3 with the 32-bit money option.
    """

    level: int | None = None
    expanded: bool = False

    def widths(self, narrow: int, wide: int) -> tuple[int, ...]:
        """The money-field form(s) to try: 16-bit, 32-bit, or both when unknown."""
        if self.level is None:
            return (wide, narrow)
        return (wide,) if self.level >= 3 and self.expanded else (narrow,)


ANY_DIALECT = Dialect()
"""Level unknown: every form is tried, the longest first (what a capture analyser uses)."""


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every message: a stable UPPER_SNAKE ``name`` and ``as_dict()``."""

    name: ClassVar[str]
    bcd_fields: ClassVar[frozenset[str]] = frozenset()

    def as_dict(self) -> dict[str, JsonValue]:
        """``{"name": ..., field: value}`` in snake_case, ready for JSON.

        Parts the wire form did not carry are left out (None fields, a False ``expanded``);
        bytes become lowercase hex, packed-BCD fields their four digits (``"1578"``).
        """
        out: dict[str, JsonValue] = {"name": self.name}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None or (field.name == "expanded" and value is False):
                continue
            out[field.name] = self._render(field.name, value)
        return out

    def _render(self, field: str, value: object) -> JsonValue:
        if field in self.bcd_fields and isinstance(value, int):
            return bcd_digits(value)
        if isinstance(value, bytes):
            return value.hex()
        if isinstance(value, bool | str):
            return value
        if isinstance(value, int):
            return int(value)  # plain int, not an IntFlag/IntEnum repr
        raise TypeError(f"cannot render {field}={value!r}")  # pragma: no cover


# --- control bytes (no checksum) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Control(Message):
    byte: ClassVar[int]


@dataclass(frozen=True, slots=True)
class Ack(Control):
    name = "ACK"
    byte = 0x00


@dataclass(frozen=True, slots=True)
class Nak(Control):
    name = "NAK"
    byte = 0xFF


@dataclass(frozen=True, slots=True)
class Ret(Control):
    """Retransmit: VMC only."""

    name = "RET"
    byte = 0xAA


# --- commands, VMC -> CD ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command(Message):
    """A VMC command: address byte = device base | ``command``, then ``subcommand``, then data."""

    command: ClassVar[int]
    subcommand: ClassVar[int | None] = None

    def encode_body(self) -> bytes:
        """The bytes after the subcommand (range-checked: raises ``LocalMdbError``)."""
        return b""

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        Cursor(data, cls.name).finish()
        return cls()


@dataclass(frozen=True, slots=True)
class Reset(Command):
    name = "RESET"
    command = 0


@dataclass(frozen=True, slots=True)
class SetupConfig(Command):
    """SETUP Config Data: the VMC's level and display; the reader answers READER CONFIG DATA."""

    name = "SETUP_CONFIG"
    command = 1
    subcommand = 0x00
    feature_level: int
    display_columns: int = 0
    display_rows: int = 0
    display_info: int = 0

    def encode_body(self) -> bytes:
        return b"".join(
            pack_uint(getattr(self, f), 1, f"{self.name} {f}")
            for f in ("feature_level", "display_columns", "display_rows", "display_info")
        )

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        msg = cls(c.uint(1), c.uint(1), c.uint(1), c.uint(1))
        c.finish()
        return msg


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
class VendSuccess(Command):
    name = "VEND_SUCCESS"
    command = 3
    subcommand = 0x02
    item: int

    def encode_body(self) -> bytes:
        return pack_uint(self.item, 2, f"{self.name} item")

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        msg = cls(c.uint(2))
        c.finish()
        return msg


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
class RevalueRequest(Command):
    name = "REVALUE_REQUEST"
    command = 5
    subcommand = 0x00
    amount: int
    expanded: bool = False

    def encode_body(self) -> bytes:
        return pack_money(self.amount, self.expanded, f"{self.name} amount")

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        wide = len(data) == 4
        msg = cls(c.uint(4 if wide else 2), expanded=wide)
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class RevalueLimitRequest(Command):
    name = "REVALUE_LIMIT_REQUEST"
    command = 5
    subcommand = 0x01


@dataclass(frozen=True, slots=True)
class ExpansionRequestId(Command):
    """EXPANSION Request ID: the VMC introduces itself; the reader answers PERIPHERAL ID."""

    name = "EXPANSION_REQUEST_ID"
    command = 7
    subcommand = 0x00
    bcd_fields = frozenset({"software_version"})
    manufacturer: str
    serial: str
    model: str
    software_version: int

    def encode_body(self) -> bytes:
        return pack_identity(self)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        msg = cls(c.ascii(3), c.ascii(12), c.ascii(12), c.uint(2))
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class ExpansionEnableOptions(Command):
    """EXPANSION Enable Options (level 3): the VMC turns on ``Level3Options`` bits."""

    name = "EXPANSION_ENABLE_OPTIONS"
    command = 7
    subcommand = 0x04
    options: int

    def encode_body(self) -> bytes:
        return pack_uint(self.options, 4, f"{self.name} options")

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        msg = cls(c.uint(4))
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class ExpansionDiagnostics(Command):
    name = "EXPANSION_DIAGNOSTICS"
    command = 7
    subcommand = 0xFF
    data: bytes = b""

    def encode_body(self) -> bytes:
        return pack_data(self.data, MAX_COMMAND_DATA - 1, f"{self.name} data")

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        return cls(bytes(data))


# --- responses, CD -> VMC -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response(Message):
    """A reader response: ``code`` byte, then data; several may share one block."""

    code: ClassVar[int]

    def encode_body(self) -> bytes:
        """The bytes after the code (range-checked: raises ``LocalMdbError``)."""
        return b""

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        """Possible body lengths after the code byte, the preferred first."""
        return (0,)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        Cursor(data, cls.name).finish()
        return cls()


@dataclass(frozen=True, slots=True)
class JustReset(Response):
    name = "JUST_RESET"
    code = 0x00


@dataclass(frozen=True, slots=True)
class ReaderConfigData(Response):
    """READER CONFIG DATA (§7.4.2); ``currency`` is packed BCD, e.g. NOK = 0x1578."""

    name = "READER_CONFIG_DATA"
    code = 0x01
    bcd_fields = frozenset({"currency"})
    feature_level: int
    currency: int
    scale_factor: int
    decimal_places: int
    max_response_time: int
    options: int = 0

    def encode_body(self) -> bytes:
        return (
            pack_uint(self.feature_level, 1, f"{self.name} feature_level")
            + pack_uint(self.currency, 2, f"{self.name} currency")
            + pack_uint(self.scale_factor, 1, f"{self.name} scale_factor")
            + pack_uint(self.decimal_places, 1, f"{self.name} decimal_places")
            + pack_uint(self.max_response_time, 1, f"{self.name} max_response_time")
            + pack_uint(self.options, 1, f"{self.name} options")
        )

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        return (7,)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        msg = cls(c.uint(1), c.uint(2), c.uint(1), c.uint(1), c.uint(1), c.uint(1))
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class DisplayRequest(Response):
    """DISPLAY REQUEST: show ``text`` for ``display_time`` tenths of a second."""

    name = "DISPLAY_REQUEST"
    code = 0x02
    display_time: int
    text: str

    def encode_body(self) -> bytes:
        time = pack_uint(self.display_time, 1, f"{self.name} display_time")
        return time + pack_text(self.text, DISPLAY_TEXT_MAX, f"{self.name} text")

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        # The text is columns x rows long, which only SETUP told; take the longest that fits.
        return tuple(range(1 + DISPLAY_TEXT_MAX, 0, -1))

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        return cls(c.uint(1), c.rest().decode("latin-1"))


@dataclass(frozen=True, slots=True)
class BeginSession(Response):
    """BEGIN SESSION: ``funds`` available (0xFFFF = unknown).

    Level 1 carries only funds; level 2/3 adds ``media_id``, ``payment_type``, ``payment_data``;
    the level 3 expanded form adds ``language`` (2 ASCII), ``currency`` (BCD), ``card_options``
    and widens funds to 32 bits. The form is chosen by which fields are set.
    """

    name = "BEGIN_SESSION"
    code = 0x03
    bcd_fields = frozenset({"currency"})
    funds: int
    media_id: int | None = None
    payment_type: int | None = None
    payment_data: int | None = None
    language: str | None = None
    currency: int | None = None
    card_options: int | None = None

    def encode_body(self) -> bytes:
        level2 = (self.media_id, self.payment_type, self.payment_data)
        level3 = (self.language, self.currency, self.card_options)
        if all(v is None for v in level2 + level3):
            return pack_money(self.funds, False, f"{self.name} funds")
        if self.media_id is None or self.payment_type is None or self.payment_data is None:
            raise LocalMdbError(f"{self.name}: set all of media_id, payment_type, payment_data")
        wide = any(v is not None for v in level3)
        out = pack_money(self.funds, wide, f"{self.name} funds")
        out += pack_uint(self.media_id, 4, f"{self.name} media_id")
        out += pack_uint(self.payment_type, 1, f"{self.name} payment_type")
        out += pack_uint(self.payment_data, 2, f"{self.name} payment_data")
        if not wide:
            return out
        if self.language is None or self.currency is None or self.card_options is None:
            raise LocalMdbError(f"{self.name}: set all of language, currency, card_options")
        out += pack_ascii(self.language, 2, f"{self.name} language")
        out += pack_uint(self.currency, 2, f"{self.name} currency")
        return out + pack_uint(self.card_options, 1, f"{self.name} card_options")

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        if dialect.level is None:
            return (16, 9, 2)
        if dialect.level == 1:
            return (2,)
        return (16,) if dialect.level >= 3 and dialect.expanded else (9,)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        if len(data) == 2:
            msg = cls(c.uint(2))
        elif len(data) == 9:
            msg = cls(c.uint(2), c.uint(4), c.uint(1), c.uint(2))
        else:
            msg = cls(c.uint(4), c.uint(4), c.uint(1), c.uint(2), c.ascii(2), c.uint(2), c.uint(1))
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class SessionCancelRequest(Response):
    name = "SESSION_CANCEL_REQUEST"
    code = 0x04


@dataclass(frozen=True, slots=True)
class VendApproved(Response):
    """VEND APPROVED: ``amount`` actually deducted (may differ from the price asked)."""

    name = "VEND_APPROVED"
    code = 0x05
    amount: int
    expanded: bool = False

    def encode_body(self) -> bytes:
        return pack_money(self.amount, self.expanded, f"{self.name} amount")

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        return dialect.widths(2, 4)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        wide = len(data) == 4
        msg = cls(c.uint(4 if wide else 2), expanded=wide)
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class VendDenied(Response):
    name = "VEND_DENIED"
    code = 0x06


@dataclass(frozen=True, slots=True)
class EndSession(Response):
    name = "END_SESSION"
    code = 0x07


@dataclass(frozen=True, slots=True)
class Cancelled(Response):
    name = "CANCELLED"
    code = 0x08


@dataclass(frozen=True, slots=True)
class PeripheralId(Response):
    """PERIPHERAL ID; ``options`` (``Level3Options``) makes it the 34-byte level 3 form."""

    name = "PERIPHERAL_ID"
    code = 0x09
    bcd_fields = frozenset({"software_version"})
    manufacturer: str
    serial: str
    model: str
    software_version: int
    options: int | None = None

    def encode_body(self) -> bytes:
        out = pack_identity(self)
        if self.options is not None:
            out += pack_uint(self.options, 4, f"{self.name} options")
        return out

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        if dialect.level is None:
            return (33, 29)
        return (33,) if dialect.level >= 3 else (29,)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        identity = (c.ascii(3), c.ascii(12), c.ascii(12), c.uint(2))
        msg = cls(*identity, options=c.uint(4) if len(data) == 33 else None)
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class Malfunction(Response):
    """MALFUNCTION / ERROR: ``code`` is the whole byte ``xxxxyyyy`` (see ``error``)."""

    name = "MALFUNCTION"
    code = 0x0A
    error_code: int

    @classmethod
    def of(cls, error: MalfunctionError, detail: int = 0) -> Self:
        if not 0 <= detail <= 0x0F:
            raise LocalMdbError(f"MALFUNCTION detail = {detail} does not fit 4 bits (0..15)")
        return cls((int(error) << 4) | detail)

    @property
    def error(self) -> MalfunctionError | None:
        """The error class (upper nibble), None for a class the spec leaves unassigned."""
        try:
            return MalfunctionError(self.error_code >> 4)
        except ValueError:
            return None

    def encode_body(self) -> bytes:
        return pack_uint(self.error_code, 1, f"{self.name} error_code")

    def as_dict(self) -> dict[str, JsonValue]:
        error = self.error
        return {
            "name": self.name,
            "code": self.error_code,
            "error": error.name if error is not None else None,
        }

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        return (1,)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        msg = cls(c.uint(1))
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class CommandOutOfSequence(Response):
    """COMMAND OUT OF SEQUENCE; level 2+ adds the reader's ``state`` (``ReaderState``)."""

    name = "COMMAND_OUT_OF_SEQUENCE"
    code = 0x0B
    state: int | None = None

    def encode_body(self) -> bytes:
        if self.state is None:
            return b""
        return pack_uint(self.state, 1, f"{self.name} state")

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        if dialect.level is None:
            return (1, 0)
        return (1,) if dialect.level >= 2 else (0,)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        msg = cls(c.uint(1) if data else None)
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class RevalueApproved(Response):
    name = "REVALUE_APPROVED"
    code = 0x0D


@dataclass(frozen=True, slots=True)
class RevalueDenied(Response):
    name = "REVALUE_DENIED"
    code = 0x0E


@dataclass(frozen=True, slots=True)
class RevalueLimitAmount(Response):
    name = "REVALUE_LIMIT_AMOUNT"
    code = 0x0F
    amount: int
    expanded: bool = False

    def encode_body(self) -> bytes:
        return pack_money(self.amount, self.expanded, f"{self.name} amount")

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        return dialect.widths(2, 4)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        wide = len(data) == 4
        msg = cls(c.uint(4 if wide else 2), expanded=wide)
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class TimeDateRequest(Response):
    name = "TIME_DATE_REQUEST"
    code = 0x11


@dataclass(frozen=True, slots=True)
class DiagnosticResponse(Response):
    """DIAGNOSTIC RESPONSE: manufacturer-defined bytes; takes the rest of the block."""

    name = "DIAGNOSTIC_RESPONSE"
    code = 0xFF
    data: bytes = b""

    def encode_body(self) -> bytes:
        return pack_data(self.data, MAX_RESPONSE_DATA - 1, f"{self.name} data")

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        return tuple(range(MAX_RESPONSE_DATA - 1, -1, -1))

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        return cls(bytes(data))


def pack_identity(msg: ExpansionRequestId | PeripheralId) -> bytes:
    """Manufacturer (3 ASCII), serial (12), model (12), software version (2, BCD)."""
    return (
        pack_ascii(msg.manufacturer, 3, f"{msg.name} manufacturer")
        + pack_ascii(msg.serial, 12, f"{msg.name} serial")
        + pack_ascii(msg.model, 12, f"{msg.name} model")
        + pack_uint(msg.software_version, 2, f"{msg.name} software_version")
    )


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
RESPONSES: tuple[type[Response], ...] = (
    JustReset,
    ReaderConfigData,
    DisplayRequest,
    BeginSession,
    SessionCancelRequest,
    VendApproved,
    VendDenied,
    EndSession,
    Cancelled,
    PeripheralId,
    Malfunction,
    CommandOutOfSequence,
    RevalueApproved,
    RevalueDenied,
    RevalueLimitAmount,
    TimeDateRequest,
    DiagnosticResponse,
)
CONTROLS: tuple[type[Control], ...] = (Ack, Nak, Ret)
