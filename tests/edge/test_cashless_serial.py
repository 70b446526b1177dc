"""``SerialCashless`` on real ports: a pty whose master end the test drives byte by byte as the
VMC (garbage, lost bytes, silence, a vanished board), and ``loop://`` for ports without a
file descriptor."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator, Iterator

import pytest

from vendgate.edge.cashless import (
    BoardReset,
    CashlessConfig,
    LinkLost,
    LinkRestored,
    LocalMdbError,
    ReaderEvent,
    SerialCashless,
)
from vendgate.protocol import mdb

CONFIG = CashlessConfig(link_lost_after_s=1.0, selection_timeout_s=5.0)  # room for a slow loop
WAIT_S = 3.0


def frame(message: mdb.VmcMessage) -> bytes:
    return mdb.encode_frame(mdb.command_block(message))


def reply_frame(*messages: mdb.CdMessage) -> bytes:
    return mdb.encode_frame(mdb.response_block(list(messages)))


class FakeBoard:
    """The master end of a pty: what a VMC would write and read."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    async def read(self, expected: bytes) -> bytes:
        """Read until ``expected`` came (or the time is up); everything read."""
        got = b""
        async with asyncio.timeout(WAIT_S):
            while expected not in got:
                await asyncio.sleep(0.005)
                with contextlib.suppress(BlockingIOError):
                    got += os.read(self.master, 4096)
        return got

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def board() -> Iterator[FakeBoard]:
    fake = FakeBoard()
    yield fake
    fake.close()


async def next_events(reader: SerialCashless, count: int) -> list[ReaderEvent]:
    out: list[ReaderEvent] = []
    async with asyncio.timeout(WAIT_S):
        async for event in reader.events():
            out.append(event)
            if len(out) == count:
                break
    return out


@pytest.fixture
async def cashless(board: FakeBoard) -> AsyncIterator[SerialCashless]:
    async with SerialCashless(board.path, CONFIG) as reader:
        yield reader


@pytest.mark.pty
async def test_replies_come_through_garbage_and_after_a_lost_byte(
    board: FakeBoard, cashless: SerialCashless
) -> None:
    board.write(b"\x00\x13garbage\x7d" + frame(mdb.Poll()) + b"\xff\xfe")
    assert reply_frame(mdb.JustReset()) in await board.read(reply_frame(mdb.JustReset()))
    damaged = frame(mdb.Reset())
    board.write(damaged[:4] + damaged[5:])  # a byte lost on the wire: no answer at all
    board.write(frame(mdb.Reset()))  # the VMC repeats
    # Replies go out in order, so an answer to the damaged frame would be read before this one.
    assert await board.read(reply_frame(mdb.Ack())) == reply_frame(mdb.Ack())
    assert await next_events(cashless, 2) == [LinkRestored(), BoardReset()]


@pytest.mark.pty
async def test_a_silent_board_is_link_lost_and_polls_bring_it_back(
    board: FakeBoard, cashless: SerialCashless
) -> None:
    board.write(frame(mdb.Poll()))
    await board.read(reply_frame(mdb.JustReset()))
    assert cashless.link_up
    assert await next_events(cashless, 2) == [LinkRestored(), LinkLost()]  # after 1 s of silence
    assert cashless.link_up is False
    with pytest.raises(LocalMdbError):
        cashless.begin_session(2500)
    board.write(frame(mdb.Poll()))
    await board.read(reply_frame(mdb.JustReset()))
    assert await next_events(cashless, 1) == [LinkRestored()]


@pytest.mark.pty
async def test_a_vanished_board_does_not_break_the_reader(board: FakeBoard) -> None:
    async with SerialCashless(board.path, CONFIG) as reader:
        board.write(frame(mdb.Poll()))
        await board.read(reply_frame(mdb.JustReset()))
        board.close()  # the pty goes away: reads fail, the shell closes and retries the port
        assert await next_events(reader, 2) == [LinkRestored(), LinkLost()]
        assert reader.state == "inactive"
    assert [e async for e in reader.events()] == []  # ended, not hanging


async def test_a_port_without_file_descriptor_is_polled() -> None:
    async with SerialCashless("loop://", CONFIG) as reader:
        assert reader._port is not None  # loop:// echoes what is written: play the VMC through it
        reader._port.write(frame(mdb.Reset()))
        assert await next_events(reader, 2) == [LinkRestored(), BoardReset()]
        assert reader.state == "inactive"


async def test_settings_and_state_pass_through_to_the_reader() -> None:
    async with SerialCashless("loop://", CONFIG) as reader:
        reader.set_selection_timeout(12.0)
        assert reader.reader.selection_timeout_s == 12.0
        assert (reader.state, reader.link_up, reader.can_begin_session) == (
            "inactive",
            False,
            False,
        )
        reader.cancel_session()  # no session: nothing happens
        with pytest.raises(LocalMdbError, match="not enabled"):
            reader.begin_session(2500)


async def test_the_same_object_can_be_entered_again_after_a_failed_open() -> None:
    reader = SerialCashless("/dev/does-not-exist-vendgate", CONFIG)
    with pytest.raises(OSError, match="could not open port"):
        async with reader:
            pass
    reader.port_url = "loop://"
    for _ in range(2):
        async with reader:
            assert reader._port is not None
            reader._port.write(frame(mdb.Poll()))
            assert await next_events(reader, 1) == [LinkRestored()]
        assert [e async for e in reader.events()] == []
        reader.reader.handle_timer(float("inf"))  # the board falls silent between the two
        assert reader.reader.next_event() == LinkLost()
