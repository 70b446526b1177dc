"""amqtt's broker with vendgate's rules: client id = username, logins, and per-machine topics.

Why not an amqtt auth plugin: amqtt 0.12 runs ``authenticate`` only after it has matched the
CONNECT's client id to an existing session. A refused client has by then already deleted that
session (clean session) or dropped its connection and rewritten its will and login
(persistent session), so an impostor refused by a plugin still throws the real client off
(seen with tests/test_broker_access.py against such a plugin). This subclass reads the CONNECT
itself first and refuses, before amqtt sees anything, a client id other than the username
(CONNACK "identifier rejected") and, when it was given an ``authenticate`` coroutine function,
a client without a login ("not authorized") or with a wrong one ("bad username or password");
otherwise it hands amqtt the connection with the CONNECT bytes replayed.

Topics are amqtt's plugin business (it asks on every subscribe, publish and delivery), so they
are checked by ``GrantsTopicPlugin``, with the grants Mosquitto's roles hold. Except for
retained messages: amqtt 0.12 sends them without asking the plugins, and on every connect it
sends a client those matching *any* client's subscriptions (``Broker._handle_client_session``
loops over ``self._subscriptions``), so a machine would get another's retained status. The
subclass sends a client only the retained messages of its own subscriptions that it may
receive, as Mosquitto does.

amqtt 0.12 also walks its live subscriptions while it awaits, which a connect storm breaks; the
subclass makes them walk snapshots (``vendgate/_amqtt_fixes.py``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.mqtt.connack import (
    BAD_USERNAME_PASSWORD,
    IDENTIFIER_REJECTED,
    NOT_AUTHORIZED,
    SERVER_UNAVAILABLE,
    ConnackPacket,
)
from amqtt.mqtt.connect import ConnectPacket
from amqtt.plugins.base import BaseTopicPlugin
from amqtt.session import Session

from vendgate._amqtt_fixes import snapshot_subscriptions
from vendgate.broker import Authenticate, LoginsUnavailable, claims_another_identity
from vendgate.cloud.broker import Access, machine_grants, permits
from vendgate.protocol.mqtt import ContractError

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
    """amqtt's ``Broker`` that refuses a client id other than the username and, given
    ``authenticate``, a client without a good login (TCP listeners)."""

    def __init__(self, config: dict[str, Any], authenticate: Authenticate | None = None) -> None:
        super().__init__(config)
        self._check_login = authenticate
        snapshot_subscriptions(self)  # many clients connecting at once

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        source = ReplayingReader(StreamReaderAdapter(reader))
        sink = StreamWriterAdapter(writer)
        try:
            connect = await ConnectPacket.from_stream(source)
        except Exception:  # not a CONNECT we can read: amqtt answers it in its own way
            refusal = None
        else:
            refusal = await self._refusal(connect)
        if refusal is not None:
            await ConnackPacket.build(0, refusal).to_stream(sink)
            await sink.close()
            return
        source.rewind()
        await self.external_connected(source, sink, listener_name)

    async def _refusal(self, connect: ConnectPacket) -> int | None:
        """The CONNACK return code that refuses this CONNECT, or None to let it in."""
        username, client_id = connect.username, connect.client_id
        if claims_another_identity(username, client_id, connect.client_id_is_random):
            log.warning(
                "refused client id %r: it must be the username %r (one client must not take "
                "over another's session)",
                client_id,
                username,
            )
            return int(IDENTIFIER_REJECTED)
        if self._check_login is None:
            return None
        if username is None or connect.password is None:
            log.warning("refused client %r: no username and password", client_id)
            return int(NOT_AUTHORIZED)
        try:
            allowed = await self._check_login(username, connect.password)
        except LoginsUnavailable as exc:
            log.warning("refused %r: %s", username, exc)
            return int(SERVER_UNAVAILABLE)
        except Exception:  # the login store is down: say so, do not let anyone in
            log.exception("refused %r: authenticate failed", username)
            return int(SERVER_UNAVAILABLE)
        if not allowed:
            log.warning("refused %r: bad username or password", username)
            return int(BAD_USERNAME_PASSWORD)
        return None

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        """amqtt's, for the session's own subscriptions only, and only what it may receive."""
        topic_filter, qos = subscription
        subscribers = self._subscriptions.get(topic_filter, ())
        handler = self._get_handler(session)
        if handler is None or all(s.client_id != session.client_id for s, _ in subscribers):
            return
        sends = []
        for topic, retained in list(self._retained_messages.items()):
            if self._matches(topic, topic_filter) and await self._topic_filtering(
                session, topic=topic, action=Action.RECEIVE
            ):
                qos_out = min(qos, retained.qos or qos)
                send = handler.mqtt_publish(topic, retained.data, qos_out, retain=True)
                sends.append(asyncio.ensure_future(send))
        if sends:
            await asyncio.wait(sends)

    def logins(self) -> list[tuple[str, str]]:
        """The username and password of every connected client that logged in."""
        return [
            (session.username, session.password)
            for session, _ in self._sessions.values()
            if session.transitions.is_connected()
            and session.username is not None
            and session.password is not None
        ]

    async def disconnect(self, username: str) -> int:
        """Close the connections logged in as ``username``, without their wills."""
        dropped = 0
        for session, handler in list(self._sessions.values()):
            if session.username == username and session.transitions.is_connected():
                session.will_flag = False
                await handler.handle_connection_closed()
                dropped += 1
        return dropped


ACTIONS = {Action.PUBLISH: Access.SEND, Action.SUBSCRIBE: Access.SUBSCRIBE}


class GrantsTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt ships no type hints
    """A cloud user may do anything; any other login is a machine, with ``machine_grants``
    (a username that is no machine id gets nothing)."""

    @dataclass
    class Config:
        prefix: str
        cloud_users: list[str] = field(default_factory=list)

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        username = session.username if session is not None else None
        if username is None or topic is None or action is None:
            return False
        if username in self.config.cloud_users:
            return True
        try:
            grants = machine_grants(username, self.config.prefix)
        except ContractError:
            return False
        allowed = permits(grants, ACTIONS.get(action, Access.RECEIVE), topic)
        if not allowed and action is not Action.RECEIVE:
            log.info("refused %s %s on %s", username, action, topic)
        return allowed
