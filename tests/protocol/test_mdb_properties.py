"""Properties: every message survives codec and link; the link resynchronises after damage."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from typing import TypeVar

from hypothesis import given
from hypothesis import strategies as st

from vendgate.protocol.mdb import (
    ANY_DIALECT,
    COMMANDS,
    FLAG,
    RESPONSES,
    Ack,
    BeginSession,
    Block,
    CashSale,
    Command,
    CommandOutOfSequence,
    DiagnosticResponse,
    Dialect,
    Direction,
    DisplayRequest,
    ExpansionDiagnostics,
    ExpansionEnableOptions,
    ExpansionRequestId,
    LinkDecoder,
    Malfunction,
    Message,
    Nak,
    PeripheralId,
    ReaderConfigData,
    Response,
    Ret,
    RevalueLimitAmount,
    RevalueRequest,
    SetupConfig,
    SetupPrices,
    VendApproved,
    VendRequest,
    VendSuccess,
    Word,
    decode_block,
    decode_command,
    decode_responses,
    encode_command,
    encode_frame,
    encode_response,
    format_capture_line,
    parse_capture_line,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


def ascii_exact(size: int) -> st.SearchStrategy[str]:
    return st.text(printable, min_size=size, max_size=size)


identity = (ascii_exact(3), ascii_exact(12), ascii_exact(12), u16)

M = TypeVar("M", bound=Message)


def bodiless(classes: Iterable[type[M]]) -> dict[type[M], st.SearchStrategy[M]]:
    """The one value of each field-less message class, taken from the package's own tables."""
    return {cls: st.just(cls()) for cls in classes if not dataclasses.fields(cls)}


COMMAND_STRATEGIES: dict[type[Command], st.SearchStrategy[Command]] = {
    **bodiless(COMMANDS),
    SetupConfig: st.builds(SetupConfig, u8, u8, u8, u8),
    SetupPrices: st.builds(SetupPrices, u16, u16) | st.builds(SetupPrices, u32, u32, u16),
    VendRequest: st.builds(VendRequest, u16, u16)
    | st.builds(VendRequest, u32, u16, expanded=st.just(True)),
    VendSuccess: st.builds(VendSuccess, u16),
    CashSale: st.builds(CashSale, u16, u16),
    RevalueRequest: st.builds(RevalueRequest, u16)
    | st.builds(RevalueRequest, u32, expanded=st.just(True)),
    ExpansionRequestId: st.builds(ExpansionRequestId, *identity),
    ExpansionEnableOptions: st.builds(ExpansionEnableOptions, u32),
    ExpansionDiagnostics: st.builds(ExpansionDiagnostics, st.binary(max_size=32)),
}


def response_strategies(dialect: Dialect) -> dict[type[Response], st.SearchStrategy[Response]]:
    """Fixed-length responses in the forms ``dialect`` negotiates, one strategy per class."""
    level = dialect.level or 1
    wide = level >= 3 and dialect.expanded
    money = u32 if wide else u16
    if level == 1:
        begin = st.builds(BeginSession, u16)
    elif not wide:
        begin = st.builds(BeginSession, u16, u32, u8, u16)
    else:
        begin = st.builds(BeginSession, u32, u32, u8, u16, ascii_exact(2), u16, u8)
    options = st.none() if level < 3 else u32
    state = st.none() if level < 2 else u8
    return {
        **bodiless(RESPONSES),
        ReaderConfigData: st.builds(ReaderConfigData, u8, u16, u8, u8, u8, u8),
        BeginSession: begin,
        VendApproved: st.builds(VendApproved, money, expanded=st.just(wide)),
        PeripheralId: st.builds(PeripheralId, *identity, options=options),
        Malfunction: st.builds(Malfunction, u8),
        CommandOutOfSequence: st.builds(CommandOutOfSequence, state),
        RevalueLimitAmount: st.builds(RevalueLimitAmount, money, expanded=st.just(wide)),
    }


def responses_for(dialect: Dialect) -> st.SearchStrategy[Response]:
    return st.one_of(*response_strategies(dialect).values())


# Variable-length responses take the rest of the block, so they may only come last.
TAIL_STRATEGIES: dict[type[Response], st.SearchStrategy[Response]] = {
    DisplayRequest: st.builds(DisplayRequest, u8, st.text(printable, max_size=32)),
    DiagnosticResponse: st.builds(DiagnosticResponse, st.binary(max_size=33)),
}
tail_responses = st.one_of(*TAIL_STRATEGIES.values())
dialects = st.sampled_from(
    [Dialect(level=1), Dialect(level=2), Dialect(level=3), Dialect(level=3, expanded=True)]
)


@st.composite
def reply_batches(draw: st.DrawFn) -> tuple[Dialect, list[Response]]:
    dialect = draw(dialects)
    batch = draw(st.lists(responses_for(dialect), min_size=0, max_size=4))
    if draw(st.booleans()) or not batch:
        batch.append(draw(tail_responses))
    while len(b"".join(bytes([m.code]) + m.encode_body() for m in batch)) > 35:
        batch.pop(0)
    return dialect, batch


any_command = st.one_of(*COMMAND_STRATEGIES.values())
any_single_response = dialects.flatmap(responses_for) | tail_responses


def test_strategies_cover_every_message_class() -> None:
    assert set(COMMAND_STRATEGIES) == set(COMMANDS)
    for dialect in (Dialect(level=1), Dialect(level=3, expanded=True)):
        assert set(response_strategies(dialect)) | set(TAIL_STRATEGIES) == set(RESPONSES)


@given(any_command, st.sampled_from([0x10, 0x60]))
def test_every_command_round_trips(command: Command, device: int) -> None:
    words = encode_command(command, device=device)
    assert words[0] == Word(device | command.command, True)
    assert sum(w.byte for w in words[:-1]) & 0xFF == words[-1].byte
    assert decode_command(words, device=device) == command


@given(any_single_response)
def test_every_response_round_trips_alone_without_a_dialect(response: Response) -> None:
    words = encode_response(response)
    assert decode_responses(words, dialect=ANY_DIALECT) == (response,)


@given(reply_batches())
def test_multi_message_replies_round_trip_in_their_dialect(
    batch: tuple[Dialect, list[Response]],
) -> None:
    dialect, messages = batch
    words = encode_response(messages)
    assert len(words) <= 36
    assert [w.mode for w in words] == [False] * (len(words) - 1) + [True]
    assert decode_responses(words, dialect=dialect) == tuple(messages)


@given(any_command, st.integers(1, 0xFF))
def test_any_corrupted_checksum_is_detected(command: Command, delta: int) -> None:
    words = encode_command(command)
    last = words[-1]
    words[-1] = Word((last.byte + delta) & 0xFF, last.mode)
    decoded = decode_block(Block(Direction.VMC, tuple(words)))
    assert decoded.checksum_ok is False
    assert decoded.messages == (command,)


def message_blocks() -> st.SearchStrategy[Block]:
    commands = any_command.map(lambda c: Block(Direction.VMC, tuple(encode_command(c))))
    replies = reply_batches().map(lambda b: Block(Direction.CD, tuple(encode_response(b[1]))))
    controls = st.sampled_from(
        [
            Block(Direction.VMC, tuple(encode_command(Ack()))),
            Block(Direction.VMC, tuple(encode_command(Ret()))),
            Block(Direction.CD, tuple(encode_response(Nak()))),
        ]
    )
    return commands | replies | controls


raw_blocks = st.builds(
    Block,
    st.sampled_from(list(Direction)),
    st.lists(st.tuples(u8, st.booleans()), min_size=1, max_size=36).map(tuple),
)


@st.composite
def chunked(draw: st.DrawFn, stream: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    edges = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(edges)]


def receive(chunks: list[bytes]) -> tuple[list[Block], LinkDecoder]:
    decoder = LinkDecoder()
    received: list[Block] = []
    for chunk in chunks:
        decoder.feed(chunk)
        received.extend(decoder)
    return received, decoder


@given(st.lists(message_blocks(), min_size=1, max_size=5), st.data())
def test_messages_round_trip_through_codec_and_link(
    blocks: list[Block], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(block) for block in blocks)
    received, decoder = receive(data.draw(chunked(stream)))
    assert received == blocks
    assert decoder.stats.dropped_frames == 0
    assert decoder.stats.dropped_bytes == 0
    decoded = [decode_block(block) for block in received]
    assert all(d.checksum_ok for d in decoded)


@given(raw_blocks)
def test_capture_lines_round_trip(block: Block) -> None:
    assert parse_capture_line(format_capture_line(block.direction, block.words)) == block


noise = st.binary(max_size=12).map(lambda b: b.replace(bytes([FLAG]), b""))


@st.composite
def damaged_streams(draw: st.DrawFn) -> tuple[bytes, list[Block], list[list[Block]]]:
    """Frames with noise around them; maybe one frame loses or flips one byte (flags too).

    Returns the stream, the blocks sent, and the acceptable receptions: damage inside a frame
    must drop exactly that frame; a lost flag next to another frame's flag is harmless (one
    flag both closes a frame and opens the next), so the frame may then survive intact.
    """
    blocks = draw(st.lists(raw_blocks, min_size=1, max_size=6))
    frames = [bytearray(encode_frame(block)) for block in blocks]
    acceptable = [list(blocks)]
    if draw(st.booleans()):
        victim = draw(st.integers(0, len(frames) - 1))
        frame = frames[victim]
        position = draw(st.integers(0, len(frame) - 1))
        if draw(st.booleans()):
            del frame[position]
        else:
            frame[position] ^= draw(st.integers(1, 0xFF))
        without_victim = blocks[:victim] + blocks[victim + 1 :]
        on_flag = position in (0, len(frame))  # after a deletion the last index shrank
        acceptable = [without_victim, list(blocks)] if on_flag else [without_victim]
    gaps = draw(st.lists(noise, min_size=len(frames) + 1, max_size=len(frames) + 1))
    stream = gaps[0] + b"".join(bytes(f) + gap for f, gap in zip(frames, gaps[1:], strict=True))
    return stream, blocks, acceptable


@given(damaged_streams(), st.data())
def test_link_resynchronises_after_noise_and_damage(
    case: tuple[bytes, list[Block], list[list[Block]]], data: st.DataObject
) -> None:
    stream, _sent, acceptable = case
    received, decoder = receive(data.draw(chunked(stream)))
    assert received in acceptable  # every intact frame, in order; nothing invented
    assert decoder.stats.frames == len(received)
