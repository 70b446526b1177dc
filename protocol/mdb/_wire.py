"""Field packing shared by the message classes: checked on the way out, cursor on the way in."""

from __future__ import annotations

from ._errors import LocalMdbError, RemoteMdbError


def pack_uint(value: int, size: int, what: str) -> bytes:
    """Big-endian (MDB sends the most significant byte first, §2.4.2), range-checked."""
    limit = 1 << (8 * size)
    if not 0 <= value < limit:
        raise LocalMdbError(f"{what} = {value} does not fit {8 * size} bits (0..{limit - 1})")
    return value.to_bytes(size, "big")


def pack_money(value: int, expanded: bool, what: str) -> bytes:
    """A scaled money value: 16 bits, or 32 bits in level 3 expanded (32-bit money) mode."""
    if not expanded and value > 0xFFFF and value < 1 << 32:
        raise LocalMdbError(
            f"{what} = {value} does not fit 16 bits; use expanded=True (level 3 with the "
            "32-bit money option) or a larger scale factor"
        )
    return pack_uint(value, 4 if expanded else 2, what)


def pack_ascii(text: str, size: int, what: str) -> bytes:
    """A fixed-width ASCII field, padded with spaces on the right as readers do."""
    if not text.isascii():
        raise LocalMdbError(f"{what} {text!r} is not ASCII")
    if len(text) > size:
        raise LocalMdbError(f"{what} {text!r} is longer than its {size} characters")
    return text.ljust(size).encode("ascii")


def pack_text(text: str, max_size: int, what: str) -> bytes:
    """A variable-length ASCII field (display text)."""
    if not text.isascii():
        raise LocalMdbError(f"{what} {text!r} is not ASCII")
    if len(text) > max_size:
        raise LocalMdbError(f"{what} is {len(text)} characters, MDB allows {max_size}")
    return text.encode("ascii")


def pack_data(data: bytes, max_size: int, what: str) -> bytes:
    if len(data) > max_size:
        raise LocalMdbError(f"{what} is {len(data)} bytes, at most {max_size} fit in a block")
    return bytes(data)


def bcd_digits(value: int) -> str:
    """A packed-BCD 16-bit field as the four digits the spec writes: 0x1578 -> ``"1578"``."""
    return f"{value:04X}"


class Cursor:
    """Reads the fields of one message body; running short is the peer's fault."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def take(self, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise RemoteMdbError(
                f"{self._what} is truncated: needs {end} data bytes, has {len(self._data)}"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def ascii(self, size: int) -> str:
        # latin-1 maps every byte, so a reader with odd bytes in its serial number still decodes.
        return self.take(size).decode("latin-1")

    def rest(self) -> bytes:
        return self.take(len(self._data) - self._pos)

    def finish(self) -> None:
        extra = len(self._data) - self._pos
        if extra:
            raise RemoteMdbError(f"{self._what} has {extra} unexpected trailing byte(s)")
