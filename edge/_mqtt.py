"""The thin MQTT shell: one paho-mqtt 2.x client driven by the asyncio loop, reconnecting forever.

paho's socket callbacks register the socket with the event loop (as aiomqtt does), so every paho
callback runs on the loop thread; only the blocking ``connect()`` (DNS, TCP, TLS) runs in a worker
thread. TCP_NODELAY is set as the socket opens, before CONNECT is written: without it each QoS 1
command/ack round trip waits ~40 ms per hop for Nagle and delayed ACK.

Session: client id = username = machine id, clean session off (commands queued while the machine
was offline are delivered when it is back), the last will set before every connect: paho writes
the will stored by ``will_set`` into each CONNECT it sends, so the ``connecting`` callback is
awaited before each attempt and sets that attempt's will (a fresh ``seq``). Reconnects
wait ``reconnect_delay()`` (capped exponential backoff with jitter). ``publish`` only sends while
connected: the agent's outbox, not paho's memory, is what keeps events across outages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from vendgate.edge._backoff import reconnect_delay
from vendgate.edge._config import MqttUrl
from vendgate.edge._logs import format_line

__all__ = ["LinkCallbacks", "MqttLink", "MqttRefused"]

log = logging.getLogger("vendgate.edge.mqtt")

MISC_EVERY_S = 1.0  # paho's keepalive pings and timeouts run from loop_misc()


class MqttRefused(ConnectionError):
    """The broker answered CONNACK with a refusal (bad credentials, not authorised...)."""


@dataclass(frozen=True, slots=True)
class LinkCallbacks:
    """Called on the loop thread; they must not block (the agent just queues an input)."""

    connected: Callable[[bool], None]  # session_present
    disconnected: Callable[[str], None]
    message: Callable[[str, bytes, bool], None]  # topic, payload, retained
    # Awaited before every connect attempt; the agent sets that attempt's last will in it.
    connecting: Callable[[], Awaitable[None]]


@dataclass
class _Connection:
    """The futures of one connection attempt, fresh for each."""

    connack: asyncio.Future[bool] = field(default_factory=asyncio.Future)
    closed: asyncio.Future[str] = field(default_factory=asyncio.Future)


class MqttLink:
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
        self._subscriptions = subscriptions
        self._callbacks = callbacks
        self._keepalive = keepalive_s
        self._backoff = (reconnect_min_s, reconnect_max_s)
        self.connects = 0
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._connection: _Connection | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._client = self._make_client(ca_file)

    def _make_client(self, ca_file: str | None) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=MQTTProtocolVersion.MQTTv311,  # amqtt and every broker speak it
        )
        client.username_pw_set(self.url.username, self.url.password)
        if self.url.tls:
            client.tls_set(ca_certs=ca_file or None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        return client

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def set_will(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = True) -> None:
        """The last will for the next connects (the broker sends it if we vanish)."""
        self._client.will_set(topic, payload, qos=qos, retain=retain)

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool = False) -> bool:
        """Queue ``payload`` for the broker; False (and nothing queued) while disconnected."""
        if not self.connected:
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    async def publish_and_wait(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> bool:
        """Publish and wait for the broker's PUBACK (wrap it in a timeout); False if offline."""
        if not self.connected:
            return False
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        acked = asyncio.get_running_loop().create_future()
        self._acks[info.mid] = acked
        try:
            await acked
        finally:
            self._acks.pop(info.mid, None)
        return True

    # -- the connection loop ------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stay connected, reconnect after any failure; until cancelled or closed."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        misc = asyncio.create_task(self._misc_loop())
        attempt = 0
        try:
            while True:
                reason = await self._one_connection()
                if self._closing:  # disconnect() was called while that connection ran
                    return
                attempt = 0 if reason is None else attempt + 1
                delay = reconnect_delay(attempt, base=self._backoff[0], cap=self._backoff[1])
                self._log(logging.INFO, "mqtt.reconnect_wait", delay_s=round(delay, 2))
                await asyncio.sleep(delay)
        finally:
            misc.cancel()
            self._client.disconnect()

    async def _one_connection(self) -> str | None:
        """Run one connection to its end; ``None`` if it was up, else why it never came up."""
        connection = self._connection = _Connection()
        await self._callbacks.connecting()
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._connect_blocking)
            session_present = await asyncio.wait_for(connection.connack, self._keepalive)
        except (OSError, ssl.SSLError, MqttRefused, TimeoutError) as error:
            self._client.disconnect()
            self._log(logging.WARNING, "mqtt.connect_failed", error=repr(error))
            return repr(error)
        self.connects += 1
        self._subscribe()
        self._callbacks.connected(session_present)
        reason = await connection.closed
        self._callbacks.disconnected(reason)
        return None

    def _connect_blocking(self) -> None:
        self._client.connect(self.url.host, self.url.port, keepalive=self._keepalive)

    def _subscribe(self) -> None:
        # With a persistent session the broker remembers them; subscribing again is harmless.
        for topic, qos in self._subscriptions:
            self._client.subscribe(topic, qos=qos)

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(MISC_EVERY_S)
            self._client.loop_misc()

    async def disconnect(self) -> None:
        """Close cleanly (the broker then does not send the last will)."""
        connection = self._connection
        self._closing = True
        self._client.disconnect()
        if connection is not None and not connection.closed.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(connection.closed), 2.0)

    # -- paho callbacks (loop thread, except the socket ones during connect) ------------------

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, code: ReasonCode, props: Any
    ) -> None:
        connection = self._connection
        if connection is None or connection.connack.done():
            return
        if code.is_failure:
            connection.connack.set_exception(MqttRefused(str(code)))
        else:
            connection.connack.set_result(bool(flags.session_present))

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, code: ReasonCode, props: Any
    ) -> None:
        connection = self._connection
        if connection is None:
            return
        if not connection.connack.done():
            connection.connack.set_exception(ConnectionError(f"closed before CONNACK: {code}"))
        if not connection.closed.done():
            connection.closed.set_result(str(code))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._callbacks.message(message.topic, bytes(message.payload), bool(message.retain))

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, code: ReasonCode, props: Any
    ) -> None:
        acked = self._acks.get(mid)
        if acked is not None and not acked.done():
            acked.set_result(None)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):  # not a TCP socket (websockets)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._on_loop(self._loop_or_fail().add_reader, sock.fileno(), self._readable)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._loop_or_fail().remove_reader, sock.fileno())

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._loop_or_fail().add_writer, sock.fileno(), self._writable)

    def _on_socket_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._loop_or_fail().remove_writer, sock.fileno())

    def _readable(self) -> None:
        try:
            # An SSL socket may hold decoded bytes that select() does not see: drain them too.
            while self._client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS:
                sock = self._client.socket()
                if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                    break
        except Exception as error:  # a broken socket paho did not turn into an error code
            self._drop_connection(error)

    def _writable(self) -> None:
        try:
            self._client.loop_write()
        except Exception as error:
            self._drop_connection(error)

    def _drop_connection(self, error: Exception) -> None:
        self._log(logging.WARNING, "mqtt.socket_error", error=repr(error))
        connection = self._connection
        if connection is not None and not connection.closed.done():
            connection.closed.set_result(repr(error))
        self._client.disconnect()

    def _log(self, level: int, event: str, **fields: object) -> None:
        log.log(level, format_line(event, {"machine_id": self.client_id, **fields}))

    def _on_loop(self, function: Callable[..., object], *args: Any) -> None:
        # paho calls the socket hooks from the connect() worker thread too.
        if threading.get_ident() == self._loop_thread:
            function(*args)
        else:
            self._loop_or_fail().call_soon_threadsafe(function, *args)

    def _loop_or_fail(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("MqttLink.run() is not running")
        return self._loop
