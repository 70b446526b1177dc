"""The thin MQTT shell: a reconnect loop around ``async with aiomqtt.Client(..., will=...)``.

aiomqtt is the cloud's MQTT library too: asyncio-native, so no thread or callback bridge of ours.
Version 2 does not reconnect by itself, so each round awaits ``connecting`` (the core answers it
with this attempt's ``SetWill``, a fresh ``seq``), connects a new client with that will,
subscribes, reports ``connected`` and hands over messages until the link drops; then it waits
``reconnect_delay()`` (capped exponential backoff with jitter) and starts over. When the link
drops, the message iterator still yields what had arrived, then raises ``MqttError``.

Session: client id = username = machine id, clean session off (commands queued while the machine
was offline are delivered when it is back), TCP_NODELAY on the socket (without it each QoS 1
command/ack round trip waits ~40 ms per hop for Nagle and delayed ACK), TLS for ``mqtts://``.
``publish`` only sends while connected and does not wait for the PUBACK: the agent's outbox, not
the client's memory, is what keeps events across outages.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiomqtt

from vendgate.edge._config import MqttUrl
from vendgate.edge._logs import format_line
from vendgate.protocol import reconnect_delay

if TYPE_CHECKING:
    from paho.mqtt.client import Client as PahoClient
    from paho.mqtt.client import ConnectFlags, DisconnectFlags
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

__all__ = ["LinkCallbacks", "MqttLink"]

log = logging.getLogger("vendgate.edge.mqtt")

CLOSE_TIMEOUT_S = 2.0
# aiomqtt warns past 10 publishes awaiting their PUBACK; a connect re-sends the whole outbox.
PENDING_CALLS_WARNING = 10_000


@dataclass(frozen=True, slots=True)
class LinkCallbacks:
    """Called on the loop; they must not block (the agent just queues an input)."""

    connected: Callable[[bool], None]  # session_present
    disconnected: Callable[[str], None]
    message: Callable[[str, bytes, bool], None]  # topic, payload, retained
    # Awaited before every connect attempt; the agent sets that attempt's last will in it.
    connecting: Callable[[], Awaitable[None]]


class _Client(aiomqtt.Client):
    """aiomqtt 2.x's client with two of paho's callbacks extended (tests/edge/test_edge_link.py
    fails if aiomqtt stops calling them):

    - CONNACK's session-present flag is kept (aiomqtt drops it);
    - a socket closed before CONNACK (mosquitto over ``max_connections``, a proxy with no broker
      behind it) fails the connect at once; aiomqtt would wait out its whole ``timeout``.
    """

    session_present = False

    def _on_connect(
        self,
        client: PahoClient,
        userdata: Any,
        flags: ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        self.session_present = bool(flags.session_present)
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def _on_disconnect(
        self,
        client: PahoClient,
        userdata: Any,
        flags: DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None = None,
    ) -> None:
        if self._lock.locked() and not self._connected.done():  # ``__aenter__`` is waiting
            self._connected.set_exception(aiomqtt.MqttError("the socket closed before CONNACK"))
        super()._on_disconnect(client, userdata, flags, reason_code, properties)


class MqttLink:
    """The agent's one MQTT connection, kept up by ``run()`` until ``disconnect()``."""

    def __init__(
        self,
        *,
        url: MqttUrl,
        client_id: str,
        subscriptions: list[tuple[str, int]],
        callbacks: LinkCallbacks,
        keepalive_s: int = 30,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 60.0,
        ca_file: str | None = None,
    ) -> None:
        self.url = url
        self.client_id = client_id
        self._subscriptions = list(subscriptions)
        self._callbacks = callbacks
        self._keepalive = keepalive_s
        self._backoff = (reconnect_min_s, reconnect_max_s)
        self._tls = aiomqtt.TLSParameters(ca_certs=ca_file or None) if url.tls else None
        self._will: aiomqtt.Will | None = None
        self._client: _Client | None = None  # while connected
        self._sending: set[asyncio.Task[None]] = set()
        self._running: asyncio.Task[Any] | None = None
        self._closing = False
        self.connects = 0

    @property
    def connected(self) -> bool:
        return self._client is not None

    def set_will(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = True) -> None:
        """The last will for the next connects (the broker sends it if we vanish)."""
        self._will = aiomqtt.Will(topic, payload, qos, retain)

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Hand ``payload`` to the broker, not waiting for its PUBACK; False while disconnected."""
        client = self._client
        if client is None:
            return False
        # The task's first step queues the message in the client, so publishes keep their order.
        task = asyncio.create_task(self._send(client, topic, payload, qos, retain))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return True

    async def publish_and_wait(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> bool:
        """Publish and wait for the broker's PUBACK (wrap it in a timeout); False if offline."""
        client = self._client
        if client is None:
            return False
        try:
            await client.publish(topic, payload, qos=qos, retain=retain)
        except aiomqtt.MqttError:
            return False
        return True

    async def _send(
        self, client: aiomqtt.Client, topic: str, payload: bytes, qos: int, retain: bool
    ) -> None:
        try:
            await client.publish(topic, payload, qos=qos, retain=retain)
        except aiomqtt.MqttError as error:  # the link dropped; the outbox re-sends what counts
            self._log(logging.DEBUG, "mqtt.publish_unconfirmed", topic=topic, error=str(error))

    # -- the connection loop ------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stay connected, reconnect after any failure; until cancelled or closed."""
        self._running = asyncio.current_task()
        attempt = 0
        while not self._closing:
            attempt = 0 if await self._one_connection() else attempt + 1
            delay = reconnect_delay(attempt, base=self._backoff[0], cap=self._backoff[1])
            self._log(logging.INFO, "mqtt.reconnect_wait", delay_s=round(delay, 2))
            await asyncio.sleep(delay)

    async def _one_connection(self) -> bool:
        """One connection, from its last will to its end; False if it never came up."""
        await self._callbacks.connecting()
        up, reason = False, "closed"
        try:
            async with self._new_client() as client:
                # One SUBSCRIBE for every filter. The persistent session keeps them too; this
                # covers a broker that lost it.
                await client.subscribe(self._subscriptions)
                self._client, up = client, True
                self.connects += 1
                self._callbacks.connected(client.session_present)
                async for message in client.messages:
                    self._callbacks.message(message.topic.value, message.payload, message.retain)
        except aiomqtt.MqttError as error:
            reason = str(error.__cause__ or error)
        finally:
            self._client = None
            for task in self._sending:  # their client is gone; they would only time out
                task.cancel()
        if not up:
            self._log(logging.WARNING, "mqtt.connect_failed", error=reason)
            return False
        self._callbacks.disconnected(reason)
        return True

    def _new_client(self) -> _Client:
        client = _Client(
            self.url.host,
            self.url.port,
            username=self.url.username,
            password=self.url.password,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V311,  # amqtt and every broker speak it
            clean_session=False,
            will=self._will,
            keepalive=self._keepalive,
            timeout=self._keepalive,
            tls_params=self._tls,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        client.pending_calls_threshold = PENDING_CALLS_WARNING
        return client

    async def disconnect(self) -> None:
        """Close cleanly and stop reconnecting (a DISCONNECT: the broker drops the last will)."""
        self._closing = True
        running = self._running
        if running is not None and not running.done():
            running.cancel()  # leaving ``async with`` sends DISCONNECT and waits for the close
            await asyncio.wait([running], timeout=CLOSE_TIMEOUT_S)

    def _log(self, level: int, event: str, **fields: object) -> None:
        log.log(level, format_line(event, {"machine_id": self.client_id, **fields}))
