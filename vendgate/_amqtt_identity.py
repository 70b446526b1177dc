"""amqtt's broker with one rule added: a client that names a username must use it as client id.

Why not an amqtt auth plugin: amqtt 0.12 runs ``authenticate`` only after it has matched the
CONNECT's client id to an existing session. A refused client has by then already deleted that
session (clean session) or dropped its connection and rewritten its will and login
(persistent session), so an impostor refused by a plugin still throws the real client off
(seen with tests/test_broker_access.py against such a plugin). This subclass reads the CONNECT
itself first, refuses a mismatch with CONNACK "identifier rejected" before amqtt sees anything,
and otherwise hands amqtt the connection with the CONNECT bytes replayed.
"""

from __future__ import annotations

import asyncio
import logging

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.mqtt.connack import IDENTIFIER_REJECTED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket

from vendgate.broker import claims_another_identity

log = logging.getLogger(__name__)


class ReplayingReader(ReaderAdapter):  # type: ignore[misc]  # amqtt ships no type hints
    """Keeps the bytes read until ``rewind()``, then serves them again before the stream's."""

    def __init__(self, stream: ReaderAdapter) -> None:
        self._stream = stream
        self._kept = bytearray()
        self._replay = bytearray()
        self._keeping = True

    async def read(self, n: int = -1) -> bytes:
        if not self._replay:
            data: bytes = await self._stream.read(n)
            if self._keeping:
                self._kept += data
            return data
        size = len(self._replay) if n < 0 else n
        replayed = bytes(self._replay[:size])
        del self._replay[:size]
        if n < 0 or len(replayed) < n:
            rest: bytes = await self._stream.read(n if n < 0 else n - len(replayed))
            replayed += rest
        return replayed

    def rewind(self) -> None:
        self._replay, self._kept, self._keeping = self._kept, bytearray(), False

    def feed_eof(self) -> None:
        self._stream.feed_eof()


class IdentityCheckingBroker(Broker):  # type: ignore[misc]  # amqtt ships no type hints
    """amqtt's ``Broker`` that refuses a client id other than the username (TCP listeners)."""

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        source = ReplayingReader(StreamReaderAdapter(reader))
        sink = StreamWriterAdapter(writer)
        try:
            connect = await ConnectPacket.from_stream(source)
            username, client_id = connect.username, connect.client_id
            refused = claims_another_identity(username, client_id, connect.client_id_is_random)
        except Exception:  # not a CONNECT we can read: amqtt answers it in its own way
            refused = False
        if refused:
            log.warning(
                "refused client id %r: it must be the username %r (one client must not take "
                "over another's session)",
                client_id,
                username,
            )
            await ConnackPacket.build(0, IDENTIFIER_REJECTED).to_stream(sink)
            await sink.close()
            return
        source.rewind()
        await self.external_connected(source, sink, listener_name)
