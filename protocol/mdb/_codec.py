"""Blocks of 9-bit words <-> typed messages: addressing, mode bits and checksums (spec §2.2).

A *word* is one MDB byte plus its mode (9th) bit. A *block* is what one side sends in one go:

- VMC -> CD: ``ADDR* data... CHK`` (mode bit on the address only), or a lone ``ACK``/``RET``/
  ``NAK`` data byte; CHK = 8-bit sum of the address and data bytes.
- CD -> VMC: ``data... CHK*`` (mode bit on the last byte only), or a lone ``00*`` ACK / ``FF*``
  NAK; CHK = 8-bit sum of the data bytes. Responses are fixed-length, so several concatenate.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple, cast

from ._base import (
    ANY_DIALECT,
    Ack,
    Command,
    Control,
    Dialect,
    JsonScalar,
    Message,
    Nak,
    Response,
    Ret,
)
from ._commands import COMMANDS
from ._errors import Answer, LocalMdbError, RemoteMdbError
from ._responses import RESPONSES

CASHLESS_1 = 0x10
CASHLESS_2 = 0x60
CASHLESS_DEVICES = (CASHLESS_1, CASHLESS_2)
MAX_BLOCK_WORDS = 36

VmcMessage = Command | Ack | Nak | Ret
CdMessage = Response | Ack | Nak
CdReply = tuple[CdMessage, ...]
"""What a cashless device answers to one command, in one block (empty: nothing, yet)."""

COMMAND_NAMES = {
    0: "RESET",
    1: "SETUP",
    2: "POLL",
    3: "VEND",
    4: "READER",
    5: "REVALUE",
    7: "EXPANSION",
}


class Word(NamedTuple):
    """One 9-bit MDB word: the byte and its mode bit."""

    byte: int
    mode: bool = False


class Direction(enum.Enum):
    """Who sent a block: the vending machine controller or the cashless device (us)."""

    VMC = "VMC"
    CD = "CD"


@dataclass(frozen=True, slots=True)
class Block:
    """One MDB block as it travels: its sender and its words."""

    direction: Direction
    words: tuple[Word, ...]

    def __post_init__(self) -> None:
        # Accept any (byte, mode) pairs but store Words, so equal blocks compare equal.
        object.__setattr__(self, "words", tuple(Word(int(b), bool(m)) for b, m in self.words))

    @property
    def data(self) -> bytes:
        return bytes(w.byte for w in self.words)


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded block; ``checksum_ok`` is reported, not enforced (see ``decode_block``)."""

    direction: Direction
    messages: tuple[Message, ...]
    checksum_ok: bool
    device: int | None = field(default=None)
    """The cashless address base (0x10 or 0x60) of a VMC command, else None."""

    def as_dict(self) -> dict[str, object]:
        messages: list[dict[str, JsonScalar]] = [m.as_dict() for m in self.messages]
        return {"dir": self.direction.value, "checksum_ok": self.checksum_ok, "messages": messages}


def checksum(data: Iterable[int]) -> int:
    """MDB CHK: the 8-bit sum, carry discarded."""
    return sum(data) & 0xFF


# --- encoding -----------------------------------------------------------------------------------


def encode_command(msg: VmcMessage, *, device: int = CASHLESS_1) -> list[Word]:
    """The words the VMC sends for ``msg`` to cashless ``device`` (0x10, or 0x60 for #2)."""
    if isinstance(msg, Control):
        return [Word(msg.byte, False)]
    if device not in CASHLESS_DEVICES:
        raise LocalMdbError(f"device {device:02X}H is not a cashless address (10H or 60H)")
    head = [device | msg.command]
    if msg.subcommand is not None:
        head.append(msg.subcommand)
    data = bytes(head) + msg.encode_body()
    _check_size(len(data) + 1, msg.name)
    return [Word(data[0], True), *(Word(b) for b in data[1:]), Word(checksum(data))]


def encode_response(msgs: CdMessage | Sequence[CdMessage]) -> list[Word]:
    """The words the CD sends: one control byte, or one or more responses plus CHK."""
    batch: list[CdMessage] = [msgs] if isinstance(msgs, Message) else list(msgs)
    if not batch:
        raise LocalMdbError("empty reply: silence is sent by sending nothing; ACK is Ack()")
    controls = [m for m in batch if isinstance(m, Control)]
    if controls:
        return [_encode_reply_control(controls[0], len(batch))]
    data = b"".join(bytes([m.code]) + m.encode_body() for m in batch if isinstance(m, Response))
    _check_size(len(data) + 1, "+".join(m.name for m in batch))
    return [*(Word(b) for b in data), Word(checksum(data), True)]


def command_block(msg: VmcMessage, *, device: int = CASHLESS_1) -> Block:
    return Block(Direction.VMC, tuple(encode_command(msg, device=device)))


def response_block(msgs: CdMessage | Sequence[CdMessage]) -> Block:
    return Block(Direction.CD, tuple(encode_response(msgs)))


def _encode_reply_control(control: Control, batch_size: int) -> Word:
    if isinstance(control, Ret):
        raise LocalMdbError("RET is sent only by the VMC")
    if batch_size > 1:
        raise LocalMdbError(f"{control.name} is a block of its own; it cannot join other messages")
    return Word(control.byte, True)


def _check_size(words: int, what: str) -> None:
    if words > MAX_BLOCK_WORDS:
        raise LocalMdbError(f"{what} needs {words} bytes; an MDB block holds {MAX_BLOCK_WORDS}")


# --- decoding -----------------------------------------------------------------------------------


def decode_block(
    block: Block, *, dialect: Dialect = ANY_DIALECT, device: int | None = None
) -> Decoded:
    """Decode one block, reporting a wrong checksum in ``checksum_ok`` instead of raising.

    ``device`` limits VMC commands to one cashless address (None accepts 0x10 and 0x60);
    ``dialect`` tells how to split a multi-message CD reply. Raises ``RemoteMdbError`` for
    blocks that cannot be read at all (empty, too long, misplaced mode bits, unknown, truncated).
    """
    words = list(block.words)
    if not words:
        raise RemoteMdbError(f"empty {block.direction.value} block")
    if len(words) > MAX_BLOCK_WORDS:
        raise RemoteMdbError(f"block of {len(words)} bytes; MDB blocks hold {MAX_BLOCK_WORDS}")
    if block.direction is Direction.VMC:
        return _decode_vmc(words, device)
    try:
        return _decode_cd(words, dialect)
    except RemoteMdbError as exc:
        # The VMC reads CD blocks; it may ask for the reply again instead of waiting.
        raise RemoteMdbError(exc.message, answer=Answer.RETRANSMIT) from None


def decode_command(words: Iterable[Word], *, device: int = CASHLESS_1) -> VmcMessage:
    """Strict: the one command (or control byte) in a VMC block; bad checksum raises."""
    block = Block(Direction.VMC, tuple(words))
    decoded = decode_block(block, device=device)
    _require_checksum(decoded, block)
    return cast(VmcMessage, decoded.messages[0])


def decode_responses(
    words: Iterable[Word], *, dialect: Dialect = ANY_DIALECT
) -> tuple[CdMessage, ...]:
    """Strict: the response(s) in a CD block (ACK/NAK come back alone); bad checksum raises."""
    block = Block(Direction.CD, tuple(words))
    decoded = decode_block(block, dialect=dialect)
    _require_checksum(decoded, block)
    return cast(tuple[CdMessage, ...], decoded.messages)


def _require_checksum(decoded: Decoded, block: Block) -> None:
    if not decoded.checksum_ok:
        data = block.data
        vmc_reading = decoded.direction is Direction.CD
        raise RemoteMdbError(
            f"checksum mismatch in {decoded.direction.value} block: CHK is {data[-1]:02X}H, "
            f"the bytes before it sum to {checksum(data[:-1]):02X}H",
            answer=Answer.RETRANSMIT if vmc_reading else Answer.SILENCE,
        )


def _decode_vmc(words: list[Word], device: int | None) -> Decoded:
    if len(words) == 1 and (control := _vmc_control(words[0])) is not None:
        return Decoded(Direction.VMC, (control,), True)
    address = words[0].byte
    if not words[0].mode:
        raise RemoteMdbError(f"VMC block starts with data byte {address:02X}H, not an address*")
    if any(w.mode for w in words[1:]):
        raise RemoteMdbError("VMC block has the mode bit on a byte after the address")
    base = address & 0xF8
    if base not in CASHLESS_DEVICES:
        raise RemoteMdbError(f"address {address:02X}H is not a cashless device (10H-17H, 60H-67H)")
    if device is not None and base != device:
        raise RemoteMdbError(f"block is for cashless {base:02X}H, not for {device:02X}H")
    if len(words) == 1:
        raise RemoteMdbError(f"command {address:02X}H* has no checksum byte")
    data = bytes(w.byte for w in words)
    command = _parse_command(address & 0x07, data[1:-1])
    return Decoded(Direction.VMC, (command,), checksum(data[:-1]) == data[-1], base)


def _vmc_control(word: Word) -> Control | None:
    # The VMC sends ACK/RET/NAK as plain data bytes; accept a stray mode bit too, since no
    # cashless address is 00H, AAH or FFH.
    for control in (Ack(), Ret(), Nak()):
        if word.byte == control.byte:
            return control
    return None


def _parse_command(number: int, body: bytes) -> Command:
    family = [c for c in COMMANDS if c.command == number]
    label = COMMAND_NAMES.get(number, f"command {number}")
    if not family:
        raise RemoteMdbError(f"unknown cashless command {number} (address low bits)")
    if len(family) == 1 and family[0].subcommand is None:
        return family[0].decode_body(body)
    if not body:
        raise RemoteMdbError(f"{label} command is truncated: no subcommand byte")
    for cls in family:
        if cls.subcommand == body[0]:
            return cls.decode_body(body[1:])
    raise RemoteMdbError(f"unknown {label} subcommand {body[0]:02X}H")


def _decode_cd(words: list[Word], dialect: Dialect) -> Decoded:
    if not words[-1].mode:
        raise RemoteMdbError("CD block does not end with the mode bit set (incomplete reply?)")
    if any(w.mode for w in words[:-1]):
        raise RemoteMdbError("CD block has the mode bit before its last byte (two replies?)")
    if len(words) == 1:
        return Decoded(Direction.CD, (_cd_control(words[0].byte),), True)
    data = bytes(w.byte for w in words)
    messages = split_responses(data[:-1], dialect)
    return Decoded(Direction.CD, messages, checksum(data[:-1]) == data[-1])


def _cd_control(byte: int) -> Control:
    if byte == Ack.byte:
        return Ack()
    if byte == Nak.byte:
        return Nak()
    if byte == Ret.byte:
        raise RemoteMdbError("RET (AAH) is sent only by the VMC, never by a cashless device")
    raise RemoteMdbError(f"lone byte {byte:02X}H* is neither ACK nor NAK, and has no checksum")


RESPONSE_BY_CODE: dict[int, type[Response]] = {cls.code: cls for cls in RESPONSES}


def split_responses(data: bytes, dialect: Dialect = ANY_DIALECT) -> tuple[Response, ...]:
    """Split concatenated response bodies (no CHK) into messages, trying forms in order.

    Backtracks when a form leaves bytes nothing can read; the error names the furthest point
    any reading got to, which is where the block went wrong.
    """
    failures: dict[int, str] = {}

    @cache
    def walk(pos: int) -> tuple[Response, ...] | None:
        if pos == len(data):
            return ()
        cls = RESPONSE_BY_CODE.get(data[pos])
        if cls is None:
            failures[pos] = f"unknown response code {data[pos]:02X}H at byte {pos}"
            return None
        left = len(data) - pos - 1
        lengths = cls.data_lengths(dialect)
        for size in (n for n in lengths if n <= left):
            rest = walk(pos + 1 + size)
            if rest is not None:
                return (cls.decode_body(data[pos + 1 : pos + 1 + size]), *rest)
        if all(n > left for n in lengths):
            wanted = " or ".join(str(n) for n in sorted(set(lengths))[:3])
            failures[pos] = (
                f"{cls.name} ({cls.code:02X}H) at byte {pos} is truncated: "
                f"needs {wanted} data bytes, the block has {left} left"
            )
        return None

    messages = walk(0)
    if messages is None:
        raise RemoteMdbError(failures[max(failures)], answer=Answer.SILENCE)
    return messages
