"""Body shapes that several messages share, as mixins: put before ``Command`` or ``Response``.

A mixin brings the fields (or, for ``UintFields``, only their widths), ``encode_body``,
``decode_body`` and ``data_lengths``, so a message that uses one declares just its identity.
Messages whose body is theirs alone keep their own methods.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Self

from ._base import Dialect, Message
from ._wire import Cursor, pack_ascii, pack_data, pack_money, pack_uint


@dataclass(frozen=True, slots=True)
class UintFields(Message):
    """Every field a big-endian unsigned integer, ``sizes`` bytes each, in declaration order."""

    sizes: ClassVar[tuple[int, ...]]

    def encode_body(self) -> bytes:
        fields = dataclasses.fields(self)
        return b"".join(
            pack_uint(getattr(self, f.name), size, f"{self.name} {f.name}")
            for f, size in zip(fields, self.sizes, strict=True)
        )

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        return (sum(cls.sizes),)

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        c = Cursor(data, cls.name)
        msg = cls(*[c.uint(size) for size in cls.sizes])
        c.finish()
        return msg


@dataclass(frozen=True, slots=True)
class AmountBody(Message):
    """One money ``amount``; the 32-bit form (``expanded``) is told apart by its length."""

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
class IdentityBody(Message):
    """Who a device is: the body of EXPANSION REQUEST ID, and the start of PERIPHERAL ID."""

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
        msg = cls(*read_identity(c))
        c.finish()
        return msg


def pack_identity(msg: IdentityBody) -> bytes:
    """Manufacturer (3 ASCII), serial (12), model (12), software version (2, BCD)."""
    return (
        pack_ascii(msg.manufacturer, 3, f"{msg.name} manufacturer")
        + pack_ascii(msg.serial, 12, f"{msg.name} serial")
        + pack_ascii(msg.model, 12, f"{msg.name} model")
        + pack_uint(msg.software_version, 2, f"{msg.name} software_version")
    )


def read_identity(c: Cursor) -> tuple[str, str, str, int]:
    return (c.ascii(3), c.ascii(12), c.ascii(12), c.uint(2))


@dataclass(frozen=True, slots=True)
class RawDataBody(Message):
    """Manufacturer-defined bytes that take the rest of the block (at most ``max_data``)."""

    max_data: ClassVar[int]
    data: bytes = b""

    def encode_body(self) -> bytes:
        return pack_data(self.data, self.max_data, f"{self.name} data")

    @classmethod
    def data_lengths(cls, dialect: Dialect) -> tuple[int, ...]:
        return tuple(range(cls.max_data, -1, -1))

    @classmethod
    def decode_body(cls, data: bytes) -> Self:
        return cls(bytes(data))
