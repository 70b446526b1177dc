"""What every MDB cashless message shares (spec §7.4): the bases, the dialect, the control bytes.

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
from dataclasses import dataclass
from typing import ClassVar, Self

from ._wire import Cursor, bcd_digits

JsonScalar = int | str | bool | None
"""The value of one field in a message's ``as_dict()``."""

# Data bytes left for a message body once the address/code byte and the CHK are counted (§2.2).
MAX_COMMAND_DATA = 33
MAX_RESPONSE_DATA = 34


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

    def as_dict(self) -> dict[str, JsonScalar]:
        """``{"name": ..., field: value}`` in snake_case, ready for JSON.

        Parts the wire form did not carry are left out (None fields, a False ``expanded``);
        bytes become lowercase hex, packed-BCD fields their four digits (``"1578"``).
        """
        out: dict[str, JsonScalar] = {"name": self.name}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None or (field.name == "expanded" and value is False):
                continue
            out[field.name] = self._render(field.name, value)
        return out

    def _render(self, field: str, value: object) -> JsonScalar:
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


CONTROLS: tuple[type[Control], ...] = (Ack, Nak, Ret)


# --- commands and responses: identity on the wire, then a body (empty unless overridden) --------


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
