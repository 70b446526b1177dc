"""The app's one MQTT connection: a reconnect loop around ``async with aiomqtt.Client``.

aiomqtt 2.x does not reconnect by itself, and subscriptions are lost with the connection, so
each round connects, subscribes, and reads messages until the link drops, then waits and
starts over. TCP_NODELAY is set on the socket (a QoS 1 round trip costs ~88 ms without it).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

import aiomqtt

from vendgate.cloud.settings import MqttSettings
from vendgate.protocol.mqtt import TopicFilter

log = logging.getLogger(__name__)

MessageHandler = Callable[[aiomqtt.Message], Awaitable[None]]
OnConnect = Callable[[], None]


class NotConnected(Exception):
    """A publish was asked for while the link is down; the caller retries later."""


class MqttLink:
    def __init__(
        self,
        settings: MqttSettings,
        filters: Sequence[TopicFilter],
        handler: MessageHandler,
        on_connect: OnConnect = lambda: None,
    ) -> None:
        self.settings = settings
        self.filters = tuple(filters)
        self.handler = handler
        self.on_connect = on_connect
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None

    def _new_client(self) -> aiomqtt.Client:
        s = self.settings
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=s.client_id,
            # A clean session: a replica's backlog is not kept for it; the edge outbox re-sends.
            clean_session=True,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            timeout=10,
        )

    async def run(self) -> None:
        while True:
            try:
                await self._connect_and_listen()
            except aiomqtt.MqttError as exc:
                log.warning(
                    "MQTT link down (%s); reconnecting in %ss", exc, self.settings.reconnect_delay
                )
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(self.settings.reconnect_delay)

    async def _connect_and_listen(self) -> None:
        async with self._new_client() as client:
            for topic_filter in self.filters:
                await client.subscribe(str(topic_filter), qos=1)
            self._client = client
            self.connected.set()
            log.info("MQTT connected to %s:%s", self.settings.host, self.settings.port)
            self.on_connect()
            async for message in client.messages:
                await self.handler(message)

    async def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        client = self._client
        if client is None:
            raise NotConnected(topic)
        try:
            await client.publish(topic, payload, qos=qos, retain=False)
        except aiomqtt.MqttError as exc:
            raise NotConnected(f"{topic}: {exc}") from exc
