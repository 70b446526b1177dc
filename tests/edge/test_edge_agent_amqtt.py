"""The whole agent (core, outbox, MQTT shell) against the in-process amqtt broker only.

The scenarios that also run on mosquitto are in test_edge_agent_brokers.py. The reader is a fake
with ``SerialCashless``'s surface (the real one on a pty is in test_edge_boardsim.py); the cloud
is a plain aiomqtt client speaking the wire format.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from vendgate.edge import SqliteStore
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Authorized,
    Config,
    Ended,
    EndReason,
    Hello,
    Rejected,
    RejectReason,
    Started,
    Status,
    StatusState,
    Telemetry,
)

if TYPE_CHECKING:
    from conftest import EdgeScene, MqttBroker

AuthorizedNow = Callable[..., Authorized]
Waiter = Callable[..., Awaitable[None]]


@pytest.fixture
def broker(on_amqtt: MqttBroker) -> MqttBroker:
    """This module's tests run on amqtt only (machine m1, no login)."""
    return on_amqtt


async def test_unacked_events_are_resent_with_the_same_id(
    scene: EdgeScene, authorized_now: AuthorizedNow
) -> None:
    async with scene.cloud() as cloud, scene.agent():
        await cloud.send(authorized_now("v1"))
        first = await cloud.next(Started)
        again = await cloud.next(Started)

        assert again == first
        assert [e for e in cloud.committed.values() if isinstance(e, Started)] == [first]


async def test_connect_announces_status_and_hello(scene: EdgeScene) -> None:
    async with scene.cloud() as cloud, scene.agent() as agent:
        status = await cloud.next(Status)
        hello = await cloud.next(Hello)

        assert (status.state, status.boot_id) == (StatusState.ONLINE, agent.boot_id)
        assert (hello.boot_id, hello.open_vends, hello.outbox) == (agent.boot_id, (), 0)
        assert agent.link._client is not None
        sock = agent.link._client._client.socket()  # aiomqtt's paho client
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_telemetry_reports_board_outbox_and_links(scene: EdgeScene) -> None:
    async with scene.cloud() as cloud, scene.agent():
        telemetry = await cloud.next(Telemetry)

    assert (telemetry.board, telemetry.outbox) == ("enabled", 0)
    assert telemetry.extra["link_up"] is True
    assert telemetry.extra["mqtt_connects"] == 1


async def test_bad_commands_are_logged_and_the_agent_keeps_working(
    scene: EdgeScene, authorized_now: AuthorizedNow, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vendgate.edge")
    reader = scene.reader()
    async with scene.cloud() as cloud, scene.agent(reader):
        topic = str(cloud.tree.command("m1", "authorized"))
        for payload in (b"not json", b'{"v": 2, "id": "x"}', b'{"v": 1, "id": "x", "ts": 5}'):
            await cloud.client.publish(topic, payload, qos=1)
        await cloud.client.publish(str(cloud.tree.command("m1", "launch")), b"{}", qos=1)
        expired = authorized_now("v-old", ttl_s=-1)
        await cloud.send(expired)
        rejected = await cloud.next(Rejected)
        await cloud.send(authorized_now("v1"))
        started = await cloud.next(Started)
        await cloud.send(authorized_now("v1"))  # the cloud retries: same vend id
        repeated = await cloud.next(Started)

    assert (rejected.vend_id, rejected.reason) == ("v-old", RejectReason.EXPIRED)
    assert repeated == started
    assert reader.begun == [2500]  # one session, whatever was sent
    lines = [r.getMessage() for r in caplog.records]
    assert sum("event=command.malformed machine_id=m1" in line for line in lines) == 3
    assert any("event=command.unknown" in line for line in lines)
    assert any("event=vend.duplicate machine_id=m1 vend_id=v1" in line for line in lines)


async def test_a_busy_or_down_board_rejects(
    scene: EdgeScene, authorized_now: AuthorizedNow
) -> None:
    reader = scene.reader(state="disabled")
    async with scene.cloud() as cloud, scene.agent(reader):
        await cloud.send(authorized_now("v1"))
        down = await cloud.next(Rejected)
        reader.state = "enabled"
        await cloud.send(authorized_now("v2"))
        await cloud.next(Started)
        await cloud.send(authorized_now("v3"))
        busy = await cloud.next(Rejected)

    assert (down.vend_id, down.reason) == ("v1", RejectReason.BOARD_DOWN)
    assert (busy.vend_id, busy.reason) == ("v3", RejectReason.BUSY)


async def test_config_changes_the_selection_timeout(scene: EdgeScene, waiter: Waiter) -> None:
    reader = scene.reader()
    async with scene.cloud() as cloud, scene.agent(reader):
        now = datetime.now(UTC)
        await cloud.send(Config.create(now=now, settings={"selection_timeout_s": 25}))
        await waiter(lambda: reader.selection_timeout_s == 25)

    assert SqliteStore(scene.config.outbox_path).load().settings == {"selection_timeout_s": 25.0}


async def test_config_hands_the_planogram_to_the_reader_and_keeps_it(
    scene: EdgeScene, waiter: Waiter
) -> None:
    reader = scene.reader()
    planogram = [{"item": 11, "price": 2500}]
    async with scene.cloud() as cloud, scene.agent(reader):
        assert reader.pricing == ("planogram", None)  # at boot: no planogram, no vends
        settings = {"planogram": planogram, "price_mode": "vmc"}
        await cloud.send(Config.create(now=datetime.now(UTC), settings=settings))
        await waiter(lambda: reader.pricing == ("vmc", {11: 2500}))
    restarted = scene.reader()
    async with scene.agent(restarted):
        assert restarted.pricing == ("vmc", {11: 2500})


async def test_a_restart_resends_what_was_never_acked(
    scene: EdgeScene, authorized_now: AuthorizedNow
) -> None:
    async with scene.cloud() as cloud:
        async with scene.agent() as first:
            await cloud.send(authorized_now("v1"))
            started = await cloud.next(Started)
        async with scene.agent() as second:
            again = await cloud.next(Started)
            # the session the first process had open ended with it
            ended = await cloud.next(Ended)

    assert again == started
    assert second.boot_id != first.boot_id
    assert (ended.vend_id, ended.reason) == ("v1", EndReason.BOARD_RESET)
    assert ended.seq > started.seq


async def test_a_missing_reader_port_is_retried_while_mqtt_works(
    scene: EdgeScene,
    authorized_now: AuthorizedNow,
    waiter: Waiter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = scene.reader(fail_opens=1)
    async with scene.cloud() as cloud, scene.agent(reader):
        await cloud.next(Hello)  # connected although the reader is not there yet
        assert not reader.opened
        await waiter(lambda: reader.opened)  # the second attempt opens it
        await cloud.send(authorized_now("v1"))
        started = await cloud.next(Started)

    assert started.vend_id == "v1"
    assert any("event=reader.open_failed machine_id=m1" in r.getMessage() for r in caplog.records)


def test_expiry_is_checked_against_the_wall_clock() -> None:
    # Guard for the tests above: an authorization valid for two minutes is not expired now.
    now = datetime.now(UTC)
    command = Authorized.create(
        now=now, vend_id="v", amount=Money(1, "NOK"), expires_at=now + timedelta(minutes=2)
    )
    assert not command.is_expired(now)
