"""The MQTT shell's connections as the broker and the cloud see them: each reconnect with a
fresh last will, the session-present flag, a retained command, a socket closed before CONNACK,
TLS, and what aiomqtt's message iterator does when the link drops.

The agent reaches the broker through ``Relay``, a TCP relay the test can cut (as a pulled cable
would: no DISCONNECT, so the broker sends the will) or hold shut (new connections are closed
before CONNACK, as by a proxy with no broker behind it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import urlsplit

import aiomqtt
import pytest
from support.mosquitto import Mosquitto, free_port, machine_password
from support.tiers import unavailable

from vendgate.broker import EmbeddedBroker
from vendgate.edge import EdgeAgent, EdgeConfig, SqliteStore
from vendgate.protocol.mqtt import Authorized, Hello, Started, Status, StatusState

if TYPE_CHECKING:
    from conftest import Cloud, EdgeScene, FakeCashless, MqttBroker

Waiter = Callable[..., Awaitable[None]]
Running = Callable[..., contextlib.AbstractAsyncContextManager[EdgeAgent]]


class Relay:
    """A TCP relay on loopback to ``target`` (``mqtt://host:port``)."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        assert parts.hostname is not None
        assert parts.port is not None
        self.target = (parts.hostname, parts.port)
        self.held = False  # new connections are closed at once
        self.accepted = 0
        self._sockets: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self, *exc_info: type[BaseException] | BaseException | TracebackType | None
    ) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every connection through the relay at once (a reset, no DISCONNECT)."""
        for writer in list(self._sockets):
            writer.transport.abort()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            if self.held:
                raise ConnectionRefusedError("the relay is held shut")
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._sockets |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._sockets -= {writer, up_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def status_where(
    cloud: Cloud, wanted: Callable[[Status], bool], within_s: float = 15
) -> Status:
    """The next ``status`` that is ``wanted`` (retained ones from before are skipped)."""
    async with asyncio.timeout(within_s):
        while not wanted(status := await cloud.next(Status, within_s)):
            pass
    return status


async def collect(client: aiomqtt.Client, into: list[bytes]) -> None:
    async for message in client.messages:
        into.append(message.payload)


def connected_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "event=mqtt.connected" in r.getMessage()]


async def test_a_broker_restart_brings_a_new_connection_with_its_own_fresh_will(
    broker: MqttBroker,
    scene: EdgeScene,
    edge_config: Callable[..., EdgeConfig],
    agent_running: Running,
    waiter: Waiter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="vendgate.edge")
    async with Relay(broker.url) as relay:
        config = edge_config(relay.url, tmp_path, broker.machine_id, **broker.agent_flags)
        async with agent_running(config, scene.reader()) as agent:
            async with scene.cloud() as cloud:
                first = await status_where(cloud, lambda s: s.boot_id == agent.boot_id)
            relay.held = True  # the agent's reconnects fail until the cloud below listens
            await broker.stop()
            await waiter(lambda: not agent.link.connected)
            await broker.start()
            async with scene.cloud() as cloud:
                refused = relay.accepted
                await waiter(lambda: relay.accepted > refused)  # it kept trying meanwhile
                relay.held = False
                again = await status_where(
                    cloud, lambda s: s.state is StatusState.ONLINE and s.seq != first.seq
                )
                hello = await cloud.next(Hello)
                relay.cut()  # the broker now sends the will of the connection it had
                will = await status_where(cloud, lambda s: s.state is StatusState.OFFLINE)

    assert (first.state, first.seq) == (StatusState.ONLINE, 2)
    assert again.boot_id == hello.boot_id == will.boot_id == agent.boot_id
    # The failed attempts took seqs too; the will is that connection's own, so it wins.
    assert again.seq is not None
    assert again.seq > 4
    assert will.seq == again.seq + 1
    # mosquitto kept the persistent session through its restart; a fresh amqtt has none.
    lines = connected_lines(caplog)
    assert "session_present=false" in lines[0]
    assert f"session_present={'true' if broker.name == 'mosquitto' else 'false'}" in lines[1]


async def test_a_retained_command_is_dropped(
    scene: EdgeScene,
    authorized_now: Callable[..., Authorized],
    waiter: Waiter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="vendgate.edge")
    reader = scene.reader()
    async with scene.cloud() as cloud:
        topic = str(cloud.tree.command(scene.machine_id, "authorized"))
        stale = authorized_now("v-retained")
        await cloud.client.publish(topic, stale.encode(), qos=1, retain=True)
        async with scene.agent(reader):  # its subscription gets the retained copy
            await waiter(
                lambda: any(
                    "event=command.retained_dropped" in r.getMessage() for r in caplog.records
                )
            )
            await cloud.send(authorized_now("v1"))
            started = await cloud.next(Started)
        await cloud.client.publish(topic, b"", qos=1, retain=True)  # clear it

    assert started.vend_id == "v1"
    assert reader.begun == [2500]  # v1's session only


async def test_a_socket_closed_before_connack_is_retried_without_waiting_for_a_timeout(
    edge_config: Callable[..., EdgeConfig],
    fake_cashless: type[FakeCashless],
    waiter: Waiter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="vendgate.edge")
    async with Relay("mqtt://127.0.0.1:9") as relay:
        relay.held = True
        # The CONNACK wait is bounded by the keepalive: an hour here, so only a connect that
        # fails at once gets a second attempt within the waiter's bound.
        config = edge_config(relay.url, tmp_path, keepalive_s="3600")
        agent = EdgeAgent(config, device=fake_cashless(), store=SqliteStore(config.outbox_path))
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(stop))
        failures: list[str] = []

        def closed_early() -> bool:
            failures[:] = [
                r.getMessage() for r in caplog.records if "closed before CONNACK" in r.getMessage()
            ]
            return len(failures) >= 2

        try:
            await waiter(closed_early)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    assert "event=mqtt.connect_failed machine_id=m1" in failures[0]


async def test_on_link_loss_the_message_iterator_yields_what_arrived_then_raises(
    amqtt_broker: EmbeddedBroker,
) -> None:
    # What the shell relies on: a command the client has acknowledged to the broker (paho sends
    # the PUBACK as the message is queued) still reaches the agent when the link then drops.
    async with (
        Relay(amqtt_broker.url) as relay,
        aiomqtt.Client("127.0.0.1", relay.port, identifier="edge", clean_session=False) as client,
    ):
        await client.subscribe("vend/v1/m1/cmd/+", qos=1)
        async with aiomqtt.Client("127.0.0.1", amqtt_broker.port, identifier="cloud") as cloud:
            for n in range(3):
                await cloud.publish(f"vend/v1/m1/cmd/c{n}", b"%d" % n, qos=1)
        async with asyncio.timeout(10):
            while len(client.messages) < 3:  # noqa: ASYNC110  # the client's queue fills
                await asyncio.sleep(0.01)
        relay.cut()
        async with asyncio.timeout(10):
            while True:  # until the client knows the link is gone: it refuses to publish
                try:
                    await client.publish("vend/v1/m1/telemetry", b"", qos=1, timeout=0.1)
                except aiomqtt.MqttCodeError:
                    break
                except aiomqtt.MqttError:  # no PUBACK: the link is cut, the client may not know
                    pass
        received: list[bytes] = []
        with pytest.raises(aiomqtt.MqttError, match="Disconnected during message iteration"):
            await collect(client, received)

    assert received == [b"0", b"1", b"2"]


# -- mosquitto only -----------------------------------------------------------------------------


def make_certificate(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 and localhost (its own CA), and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        unavailable("mosquitto", "no `openssl` binary on PATH to make the test certificate")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=vendgate test broker",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(folder / "server.key"), "-out", str(folder / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in ("server.key", "server.crt"):
        (folder / name).chmod(0o644)  # mosquitto started as root reads them as its own user
    return folder / "server.crt"


async def test_mqtts_connects_to_the_repo_brokers_tls_listener(
    mosquitto: Mosquitto,
    on_mosquitto: MqttBroker,
    edge_config: Callable[..., EdgeConfig],
    cloud_for: Callable[..., contextlib.AbstractAsyncContextManager[Cloud]],
    agent_running: Running,
    fake_cashless: type[FakeCashless],
    tmp_path: Path,
) -> None:
    # The TLS listener mosquitto.conf shows (commented out), on a free port of its own.
    certificate = make_certificate(mosquitto.folder)
    tls_port = free_port()
    mosquitto.stop()
    with (mosquitto.folder / "mosquitto.conf").open("a") as config:
        config.write(
            f"listener {tls_port} 127.0.0.1\n"
            f"certfile {certificate}\nkeyfile {mosquitto.folder / 'server.key'}\n"
        )
    mosquitto.start()
    url = f"mqtts://localhost:{tls_port}"
    config = edge_config(
        url, tmp_path, "m2", mqtt_password=machine_password("m2"), mqtt_ca_file=str(certificate)
    )
    async with (
        cloud_for(mosquitto.url, "m2", **on_mosquitto.cloud_login) as cloud,
        agent_running(config, fake_cashless()) as agent,
    ):
        status = await cloud.next(Status)
        hello = await cloud.next(Hello)

    assert (status.state, status.boot_id, hello.boot_id) == (
        StatusState.ONLINE,
        agent.boot_id,
        agent.boot_id,
    )
