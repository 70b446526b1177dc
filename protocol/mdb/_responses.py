"""MDB cashless responses, cashless device -> VMC (§7.4), and ``RESPONSES``, the codec's table.

Each class names its ``code`` and the body lengths it may have (``data_lengths``), which is how
the codec splits a block holding several responses; shared body shapes come from ``_bodies``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from ._base import MAX_RESPONSE_DATA, Dialect, JsonScalar, Response
from ._bodies import AmountBody, IdentityBody, RawDataBody, UintFields, pack_identity, read_identity
from ._enums import MalfunctionError
from ._errors import LocalMdbError
from ._wire import Cursor, pack_ascii, pack_money, pack_text, pack_uint

DISPLAY_TEXT_MAX = 32


@dataclass(frozen=True, slots=True)
class JustReset(Response):
    name = "JUST_RESET"
    code = 0x00


@dataclass(frozen=True, slots=True)
class ReaderConfigData(UintFields, Response):
    """READER CONFIG DATA (§7.4.2); ``currency`` is packed BCD, e.g. NOK = 0x1578."""

    name = "READER_CONFIG_DATA"
    code = 0x01
    bcd_fields = frozenset({"currency"})
    sizes = (1, 2, 1, 1, 1, 1)
    feature_level: int
    currency: int
    scale_factor: int
    decimal_places: int
    max_response_time: int
    options: int = 0


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
class VendApproved(AmountBody, Response):
    """VEND APPROVED: ``amount`` actually deducted (may differ from the price asked)."""

    name = "VEND_APPROVED"
    code = 0x05


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
class PeripheralId(IdentityBody, Response):
    """PERIPHERAL ID; ``options`` (``Level3Options``) makes it the 34-byte level 3 form."""

    name = "PERIPHERAL_ID"
    code = 0x09
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
        msg = cls(*read_identity(c), options=c.uint(4) if len(data) == 33 else None)
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class Malfunction(UintFields, Response):
    """MALFUNCTION / ERROR: ``code`` is the whole byte ``xxxxyyyy`` (see ``error``)."""

    name = "MALFUNCTION"
    code = 0x0A
    sizes = (1,)
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

    def as_dict(self) -> dict[str, JsonScalar]:
        error = self.error
        return {
            "name": self.name,
            "code": self.error_code,
            "error": error.name if error is not None else None,
        }


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
class RevalueLimitAmount(AmountBody, Response):
    name = "REVALUE_LIMIT_AMOUNT"
    code = 0x0F


@dataclass(frozen=True, slots=True)
class TimeDateRequest(Response):
    name = "TIME_DATE_REQUEST"
    code = 0x11


@dataclass(frozen=True, slots=True)
class DiagnosticResponse(RawDataBody, Response):
    """DIAGNOSTIC RESPONSE: manufacturer-defined bytes; takes the rest of the block."""

    name = "DIAGNOSTIC_RESPONSE"
    code = 0xFF
    max_data = MAX_RESPONSE_DATA - 1


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
