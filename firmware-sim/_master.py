"""The VMC's side of the bus, one transaction at a time (like pymodbus' transaction manager).

``send`` puts a command on the bus and waits for its reply; ``receive_block`` returns
``(command, reply)`` when the reply is good. A reply that arrives when nothing is outstanding
is stale (the VMC gave up on it) and dropped. A damaged reply is answered with RET (§2.2); a
NAK, or silence past ``response_timeout_s``, makes the master repeat the command, up to
``retries`` times, then ``handle_timer`` hands the command back: the VMC decides what next.
Every block that crosses the bus, both ways, goes to ``trace`` (the capture file).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from vendgate.protocol import mdb

log = logging.getLogger(__name__)

Trace = Callable[[mdb.Block], None]


@dataclass
class _Outstanding:
    command: mdb.Command
    block: mdb.Block
    sent_at: float
    attempts: int = 1
    rets: int = 0


class BusMaster:
    def __init__(
        self, *, response_timeout_s: float, retries: int, trace: Trace | None = None
    ) -> None:
        self.response_timeout_s = response_timeout_s
        self.retries = retries
        self.dialect = mdb.ANY_DIALECT
        self.link = mdb.LinkDecoder()
        self.bad_replies = 0
        self._trace = trace
        self._outgoing: list[mdb.Block] = []
        self._outstanding: _Outstanding | None = None

    @property
    def busy(self) -> bool:
        return self._outstanding is not None

    @property
    def deadline(self) -> float | None:
        if self._outstanding is None:
            return None
        return self._outstanding.sent_at + self.response_timeout_s

    def send(self, command: mdb.Command, now: float) -> None:
        block = mdb.command_block(command)
        self._outstanding = _Outstanding(command, block, now)
        self._put(block)

    def send_ack(self) -> None:
        """ACK a data reply; no answer is expected."""
        self._put(mdb.command_block(mdb.Ack()))

    def abort(self) -> None:
        """Power is gone: forget the transaction and whatever was about to be written."""
        self._outstanding = None
        self._outgoing.clear()
        self.link = mdb.LinkDecoder()

    def take_blocks(self) -> list[mdb.Block]:
        blocks, self._outgoing = self._outgoing, []
        return blocks

    def receive_block(self, block: mdb.Block, now: float) -> tuple[mdb.Command, mdb.CdReply] | None:
        if block.direction is not mdb.Direction.CD:
            return None  # our own echo
        self._traced(block)
        outstanding = self._outstanding
        if outstanding is None:
            log.debug("dropping a stale reply")
            return None
        try:
            reply = mdb.decode_responses(block.words, dialect=self.dialect)
        except mdb.RemoteMdbError as exc:
            self._bad_reply(outstanding, exc, now)
            return None
        if reply == (mdb.Nak(),):
            return None  # the peripheral missed the command: the timeout repeats it
        self._outstanding = None
        return outstanding.command, reply

    def handle_timer(self, now: float) -> mdb.Command | None:
        """The command given up on after its repeats, if its time ran out."""
        outstanding = self._outstanding
        if outstanding is None or now < outstanding.sent_at + self.response_timeout_s:
            return None
        if outstanding.attempts <= self.retries:
            self._repeat(outstanding, now)
            return None
        self._outstanding = None
        return outstanding.command

    def _bad_reply(self, outstanding: _Outstanding, exc: mdb.RemoteMdbError, now: float) -> None:
        self.bad_replies += 1
        log.debug("bad reply to %s: %s", outstanding.command.name, exc.message)
        if exc.answer is mdb.Answer.RETRANSMIT and outstanding.rets < self.retries:
            outstanding.rets += 1
            outstanding.sent_at = now
            self._put(mdb.command_block(mdb.Ret()))
        # otherwise wait: the timeout repeats the command

    def _repeat(self, outstanding: _Outstanding, now: float) -> None:
        outstanding.attempts += 1
        outstanding.sent_at = now
        self._put(outstanding.block)

    def _put(self, block: mdb.Block) -> None:
        self._traced(block)
        self._outgoing.append(block)

    def _traced(self, block: mdb.Block) -> None:
        if self._trace is not None:
            self._trace(block)
