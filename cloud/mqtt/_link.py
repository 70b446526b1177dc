"""The app's one MQTT connection: a reconnect loop around ``async with aiomqtt.Client``.

aiomqtt 2.x does not reconnect by itself, so each round connects, subscribes, announces the
replica, and reads messages until the link drops, then waits and starts over: the first wait
is short (``reconnect_min``), doubling with jitter up to ``reconnect_delay``. TCP_NODELAY is set
on the socket (a QoS 1 round trip costs ~88 ms without it).

The session is persistent (clean session off, a client id fixed per replica): events a
machine publishes while this replica reconnects are queued for it by the broker. On every
connect the replica publishes a retained ``online`` on ``{prefix}/cloud`` (its last will is
``offline``); each machine that hears it re-sends its unacked events at once, which also
covers what a broker without the session (a restart without persistence, a new replica)
could not keep.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

import aiomqtt

from vendgate.cloud.settings import MqttSettings
from vendgate.protocol import reconnect_delay
from vendgate.protocol.mqtt import CloudPresence, StatusState, Topic, TopicFilter

log = logging.getLogger(__name__)


class Reply(NamedTuple):
    """A message the handler wants published once it has handled one (an ack)."""

    topic: str
    payload: bytes


# A handler may answer with replies; the link publishes them (None: nothing to publish).
MessageHandler = Callable[[aiomqtt.Message], Awaitable[Sequence[Reply] | None]]
OnConnect = Callable[[], None]


# Messages are handled in lanes: one machine's always in the same lane, in order, and a slow
# one (a transaction waiting on a lock) holds up only the machines that share its lane. A full
# lane stops the reading, so the broker queues for us instead of our memory growing.
LANES = 64
LANE_BACKLOG = 256
MAX_INFLIGHT = 1000


def _waiting(client: aiomqtt.Client) -> list[aiomqtt.Message]:
    """The messages aiomqtt has already read and queued.

    Its ``messages`` iterator hands out one message per pass of the event loop (a task per
    message); a busy loop then reads a few hundred a second, and at 200 machines the pongs
    waited over the scan's 1.5 s behind events in that queue (``benchmarks/bench_cloud.py``).
    aiomqtt 2.x keeps the queue as ``Client._queue`` and has no public way to drain it; if a
    later version moves it, this drains nothing and the iterator's pace is what we get.
    """
    queue = getattr(client, "_queue", None)
    found: list[aiomqtt.Message] = []
    while isinstance(queue, asyncio.Queue) and not queue.empty():
        found.append(queue.get_nowait())
    return found


class NotConnected(ConnectionError):
    """A publish was asked for while the link is down; the caller retries later."""


class MqttLink:
    """Publishes at once (``publish``); its messages go to the handler given to ``run``, so the
    link exists before the parts that publish over it and the handler that needs them."""

    def __init__(
        self,
        settings: MqttSettings,
        filters: Sequence[TopicFilter],
        on_connect: OnConnect = lambda: None,
        presence: Topic | None = None,
        *,
        machine_level: int = 2,
        lanes: int = LANES,
        express: TopicFilter | None = None,
    ) -> None:
        """``machine_level``: which level of a topic names the machine (after the prefix's).

        ``express``: messages it matches (the pongs) are handled at once, in no lane: a scan
        waits for them, and they must not queue behind other machines' transactions.
        """
        self.settings = settings
        self.express = express
        self.machine_level = machine_level
        self.lanes = lanes
        self.filters = tuple(filters)
        self.on_connect = on_connect
        self.presence = presence  # where to announce this replica (None: nowhere)
        self.connected = asyncio.Event()
        self.connects = 0
        self._client: aiomqtt.Client | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def _presence(self, state: StatusState) -> bytes:
        now = datetime.now(UTC)
        return CloudPresence.create(now=now, state=state, replica=self.settings.client_id).encode()

    def _new_client(self) -> aiomqtt.Client:
        s = self.settings
        will = None
        if self.presence is not None:
            will = aiomqtt.Will(str(self.presence), self._presence(StatusState.OFFLINE), 1, True)
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            # Persistent: the broker keeps this replica's subscriptions and queues its events
            # while it reconnects.
            clean_session=False,
            will=will,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            timeout=10,
            # paho lets 20 QoS 1 publishes wait for their PUBACK by default; the cloud acks
            # every event of every machine over this one connection, so more must be in flight.
            max_inflight_messages=MAX_INFLIGHT,
        )

    async def run(self, handler: MessageHandler) -> None:
        attempt = 0
        while True:
            connects = self.connects
            try:
                await self._connect_and_listen(handler)
            except aiomqtt.MqttError as exc:
                log.warning("MQTT link down (%s)", exc)
            finally:
                self._client = None
                self.connected.clear()
            attempt = 0 if self.connects > connects else attempt + 1
            # Replicas that lost the broker together must not come back in lockstep.
            delay = reconnect_delay(
                attempt, base=self.settings.reconnect_min, cap=self.settings.reconnect_delay
            )
            log.info("MQTT reconnecting in %.2fs", delay)
            await asyncio.sleep(delay)

    async def _connect_and_listen(self, handler: MessageHandler) -> None:
        async with self._new_client() as client:
            for topic_filter in self.filters:
                await client.subscribe(str(topic_filter), qos=1)
            self._client = client
            self.connects += 1
            self.connected.set()
            if self.presence is not None:
                await client.publish(
                    str(self.presence), self._presence(StatusState.ONLINE), qos=1, retain=True
                )
            log.info(
                "MQTT connected to %s:%s as %s",
                self.settings.host,
                self.settings.port,
                self.settings.client_id,
            )
            self.on_connect()
            await self._dispatch(client, handler)

    async def _dispatch(self, client: aiomqtt.Client, handler: MessageHandler) -> None:
        lanes = [asyncio.Queue[aiomqtt.Message](LANE_BACKLOG) for _ in range(self.lanes)]
        workers = [asyncio.create_task(self._work(lane, handler)) for lane in lanes]
        try:
            async for first in client.messages:
                for message in (first, *_waiting(client)):
                    if self.express is not None and self.express.matches(message.topic.value):
                        self._soon(self._handle(message, handler))
                    else:
                        await lanes[self._lane_of(message)].put(message)
        finally:
            # Messages still queued are dropped with the connection: the edge re-sends every
            # event the cloud has not acked, and statuses are retained.
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    def _lane_of(self, message: aiomqtt.Message) -> int:
        levels = message.topic.value.split("/")
        machine = levels[self.machine_level] if len(levels) > self.machine_level else ""
        return zlib.crc32(machine.encode()) % self.lanes  # the same lane in every run

    async def _work(self, lane: asyncio.Queue[aiomqtt.Message], handler: MessageHandler) -> None:
        while True:
            await self._handle(await lane.get(), handler)

    async def _handle(self, message: aiomqtt.Message, handler: MessageHandler) -> None:
        try:
            replies = await handler(message) or ()
        except Exception:  # one message must never stop its lane
            log.exception("handling %s failed; dropped (an event is re-sent)", message.topic)
            return
        if replies:
            # The lane goes on while the broker acknowledges the acks (a round trip each).
            self._soon(self._reply(replies))

    def _soon(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _reply(self, replies: Sequence[Reply]) -> None:
        for reply in replies:
            try:
                await self.publish(reply.topic, reply.payload)
            except NotConnected:
                log.info("%s not sent (link down); the edge will re-send its event", reply.topic)

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        client = self._client
        if client is None:
            raise NotConnected(topic)
        try:
            await client.publish(topic, payload, qos=qos, retain=False)
        except aiomqtt.MqttError as exc:
            raise NotConnected(f"{topic}: {exc}") from exc
