"""Carrying MDB blocks over an ordinary byte stream (a pty, a USB serial port, a socket).

MDB's 9th (mode) bit does not survive a pty or an 8-bit UART, so each block travels in a frame
that states its mode bits explicitly. The contract, byte by byte, is ``docs/mdb-link.md``::

    7E | type | count | mode bitmap (ceil(count/8)) | count bytes | CRC-16 (2, big-endian) | 7E

Everything between the flags is byte-stuffed (``7E`` -> ``7D 5E``, ``7D`` -> ``7D 5D``); the
CRC is CRC-16/CCITT-FALSE (poly 1021H, init FFFFH) over type..last data byte. The decoder
resynchronises on the next flag after noise, a lost or a corrupted byte: a damaged frame is
dropped and counted, never guessed at.

``MdbLink`` is the seam: a later 9-bit UART (PARMRK) or adapter link implements the same three
methods and the layers above do not change.
"""

from __future__ import annotations

import binascii
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from ._codec import MAX_BLOCK_WORDS, Block, Direction, Word
from ._errors import LocalMdbError

FLAG = 0x7E
ESCAPE = 0x7D
ESCAPE_XOR = 0x20
FRAME_TYPES = {Direction.VMC: 0x01, Direction.CD: 0x02}
DIRECTION_BY_TYPE = {code: direction for direction, code in FRAME_TYPES.items()}
# type + count + bitmap + data + CRC, then every byte possibly escaped.
MAX_FRAME_BYTES = 2 * (2 + (MAX_BLOCK_WORDS + 7) // 8 + MAX_BLOCK_WORDS + 2)


class MdbLink(Protocol):
    """A sans-I/O link: blocks to bytes for the wire, and bytes from the wire to blocks."""

    def encode(self, block: Block) -> bytes:
        """The bytes to write for ``block``."""
        ...

    def feed(self, data: bytes) -> None:
        """Buffer bytes read from the wire (any split: whole frames, halves, single bytes)."""
        ...

    def next_block(self) -> Block | None:
        """The next complete block received, or None until more bytes are fed."""
        ...


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 1021H, init FFFFH, no reflection); check value 29B1H."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode_frame(block: Block) -> bytes:
    """One flagged, stuffed, CRC-protected frame carrying ``block`` (1..36 words)."""
    count = len(block.words)
    if not 1 <= count <= MAX_BLOCK_WORDS:
        raise LocalMdbError(f"a frame carries 1..{MAX_BLOCK_WORDS} words, not {count}")
    body = bytes([FRAME_TYPES[block.direction], count]) + _mode_bitmap(block.words) + block.data
    body += crc16(body).to_bytes(2, "big")
    return bytes([FLAG]) + _stuff(body) + bytes([FLAG])


def _mode_bitmap(words: tuple[Word, ...]) -> bytes:
    bitmap = bytearray((len(words) + 7) // 8)
    for index, word in enumerate(words):
        if word.mode:
            bitmap[index // 8] |= 1 << (index % 8)
    return bytes(bitmap)


def _stuff(body: bytes) -> bytes:
    out = bytearray()
    for byte in body:
        if byte in (FLAG, ESCAPE):
            out += bytes([ESCAPE, byte ^ ESCAPE_XOR])
        else:
            out.append(byte)
    return bytes(out)


class FrameError(ValueError):
    """A candidate frame failed a check; the decoder drops it (internal)."""


def _unstuff(raw: bytes) -> bytes:
    out = bytearray()
    escaped = False
    for byte in raw:
        if escaped:
            if byte ^ ESCAPE_XOR not in (FLAG, ESCAPE):
                raise FrameError(f"invalid escape 7D {byte:02X}")
            out.append(byte ^ ESCAPE_XOR)
            escaped = False
        elif byte == ESCAPE:
            escaped = True
        else:
            out.append(byte)
    if escaped:
        raise FrameError("frame ends inside an escape (7D 7E aborts a frame)")
    return bytes(out)


def decode_frame(raw: bytes) -> Block:
    """The block inside one frame's bytes between its flags; raises ``FrameError`` if damaged."""
    body = _unstuff(raw)
    if len(body) < 5:
        raise FrameError(f"frame of {len(body)} bytes is too short")
    direction = DIRECTION_BY_TYPE.get(body[0])
    count = body[1]
    if direction is None:
        raise FrameError(f"unknown frame type {body[0]:02X}")
    if not 1 <= count <= MAX_BLOCK_WORDS:
        raise FrameError(f"word count {count} outside 1..{MAX_BLOCK_WORDS}")
    bitmap_size = (count + 7) // 8
    if len(body) != 2 + bitmap_size + count + 2:
        raise FrameError(f"frame of {len(body)} bytes does not match its count {count}")
    if crc16(body[:-2]) != int.from_bytes(body[-2:], "big"):
        raise FrameError("CRC mismatch")
    bitmap = int.from_bytes(body[2 : 2 + bitmap_size], "little")
    if bitmap >> count:
        raise FrameError("mode bits set beyond the word count")
    data = body[2 + bitmap_size : -2]
    return Block(direction, tuple(Word(b, bool(bitmap >> i & 1)) for i, b in enumerate(data)))


@dataclass
class LinkStats:
    """What the decoder received and what it had to throw away (for logs and telemetry)."""

    frames: int = 0
    dropped_frames: int = 0
    dropped_bytes: int = 0
    last_error: str | None = None


class LinkDecoder:
    """Framed link over a byte stream: ``feed()`` bytes, take ``next_block()``; ``encode()`` out.

    Resynchronisation: bytes before the first flag are noise; a frame ends at the next flag, and
    that flag also opens the next frame; a damaged frame (bad escape, length, count or CRC, or
    longer than any valid frame) is dropped and counted in ``stats``.
    """

    def __init__(self) -> None:
        self.stats = LinkStats()
        self._ready: deque[Block] = deque()
        self._frame: bytearray | None = None  # None: hunting for a flag

    def encode(self, block: Block) -> bytes:
        return encode_frame(block)

    def feed(self, data: bytes) -> None:
        for byte in data:
            self._receive(byte)

    def next_block(self) -> Block | None:
        return self._ready.popleft() if self._ready else None

    def __iter__(self) -> Iterator[Block]:
        while (block := self.next_block()) is not None:
            yield block

    def _receive(self, byte: int) -> None:
        if byte == FLAG:
            if self._frame:
                self._close(bytes(self._frame))
            self._frame = bytearray()
        elif self._frame is None:
            self.stats.dropped_bytes += 1
        else:
            self._frame.append(byte)
            if len(self._frame) > MAX_FRAME_BYTES:
                self._drop(bytes(self._frame), "frame longer than any valid frame")
                self._frame = None

    def _close(self, raw: bytes) -> None:
        try:
            block = decode_frame(raw)
        except FrameError as exc:
            self._drop(raw, str(exc))
            return
        self.stats.frames += 1
        self._ready.append(block)

    def _drop(self, raw: bytes, reason: str) -> None:
        self.stats.dropped_frames += 1
        self.stats.dropped_bytes += len(raw)
        self.stats.last_error = reason
