"""What the reader owes the VMC, and whether the VMC got it (MDB §2.2, App. A3).

- A command's reply goes out at once. The VMC repeats a command whose reply it missed: a
  command equal to the previous one, with no POLL in between, is that repetition and gets the
  same reply again (the reader must not apply it twice).
- Messages the reader starts (JUST RESET, BEGIN SESSION, SESSION CANCEL REQUEST, COMMAND OUT OF
  SEQUENCE) wait in the outbox for a POLL, then stay in flight until the VMC ACKs them; without
  the ACK they go out again at the next POLL. An unacknowledged command reply is repeated too
  when a POLL follows it directly; a different command proves the VMC read it.
- RET asks for the last block again, byte for byte.
"""

from __future__ import annotations

from collections import deque

from vendgate.protocol import mdb

MAX_REPLY_DATA = mdb.MAX_BLOCK_WORDS - 1  # the CHK takes the last word


class Delivery:
    def __init__(self) -> None:
        self._outgoing: list[mdb.Block] = []
        self._outbox: deque[mdb.Response] = deque()
        self._in_flight: tuple[mdb.Response, ...] = ()
        self._pending_reply: tuple[mdb.Response, ...] = ()
        self._last_sent: mdb.Block | None = None
        self._last_command: mdb.Command | None = None
        self._last_reply: mdb.CdReply = ()
        self._polled_since_command = False

    # --- the outbox ----------------------------------------------------------------------------

    def queue(self, message: mdb.Response) -> None:
        """Send ``message`` at a coming POLL, unless it is already waiting or in flight."""
        if message not in self._outbox and message not in self._in_flight:
            self._outbox.append(message)

    def withdraw(self, *kinds: type[mdb.Response]) -> None:
        """Forget queued messages of these kinds that no longer hold (sent ones stay sent)."""
        self._outbox = deque(m for m in self._outbox if not isinstance(m, kinds))

    def clear(self) -> None:
        self._outbox.clear()
        self._in_flight = self._pending_reply = ()

    @property
    def waiting(self) -> tuple[mdb.Response, ...]:
        """Queued and in-flight messages, oldest first."""
        return self._in_flight + tuple(self._outbox)

    # --- what the VMC sends --------------------------------------------------------------------

    def acknowledged(self) -> None:
        self._in_flight = self._pending_reply = ()

    def retransmit(self) -> None:
        if self._last_sent is not None:
            self._outgoing.append(self._last_sent)

    def answer_poll(self) -> tuple[mdb.Response, ...]:
        """Reply to POLL; returns the messages that left the outbox just now."""
        self._polled_since_command = True
        fresh = self._take_from_outbox()
        self._in_flight += fresh
        messages = self._pending_reply + self._in_flight
        self._send(messages if messages else (mdb.Ack(),))
        return fresh

    def is_repeat(self, command: mdb.Command) -> bool:
        return command == self._last_command and not self._polled_since_command

    def repeat_reply(self) -> None:
        self._reply(self._last_reply)

    def new_command(self) -> None:
        """A command that is no repetition: the VMC read our last command reply; polled
        messages without an ACK go back to the front of the outbox for the next POLL."""
        self._pending_reply = ()
        self._outbox.extendleft(reversed(self._in_flight))
        self._in_flight = ()

    def answer_command(self, command: mdb.Command, reply: mdb.CdReply) -> None:
        self._last_command, self._last_reply = command, reply
        self._polled_since_command = False
        self._reply(reply)

    def take_blocks(self) -> list[mdb.Block]:
        blocks, self._outgoing = self._outgoing, []
        return blocks

    # --- internals -----------------------------------------------------------------------------

    def _take_from_outbox(self) -> tuple[mdb.Response, ...]:
        room = MAX_REPLY_DATA - sum(_size(m) for m in self._pending_reply + self._in_flight)
        taken: list[mdb.Response] = []
        while self._outbox and _size(self._outbox[0]) <= room:
            room -= _size(self._outbox[0])
            taken.append(self._outbox.popleft())
        return tuple(taken)

    def _reply(self, reply: mdb.CdReply) -> None:
        self._pending_reply = tuple(m for m in reply if isinstance(m, mdb.Response))
        self._send(reply)

    def _send(self, messages: mdb.CdReply) -> None:
        block = mdb.response_block(messages)
        self._outgoing.append(block)
        self._last_sent = block


def _size(message: mdb.Response) -> int:
    return 1 + len(message.encode_body())
