"""The whole agent (core, outbox, paho shell) against the in-process amqtt broker.

The reader is a fake with ``SerialCashless``'s surface (the real one on a pty is in
test_edge_boardsim.py); the cloud is a plain aiomqtt client speaking the wire format.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from vendgate.broker import EmbeddedBroker
from vendgate.edge import EdgeAgent, EdgeConfig, SqliteStore
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Authorized,
    Config,
    Dispensed,
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
    from conftest import Cloud, FakeCashless

AgentRunning = Callable[..., AbstractAsyncContextManager[EdgeAgent]]
CloudFor = Callable[..., AbstractAsyncContextManager["Cloud"]]
Waiter = Callable[..., Awaitable[None]]


@pytest.fixture
def config(
    amqtt_broker: EmbeddedBroker, tmp_path: Path, edge_config: Callable[..., EdgeConfig]
) -> EdgeConfig:
    return edge_config(amqtt_broker.url, tmp_path)


async def test_a_vend_reaches_the_cloud_and_stops_after_the_ack(
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
    waiter: Waiter,
) -> None:
    reader = fake_cashless()
    async with cloud_for(config.mqtt.redacted(), "m1") as cloud, agent_running(config, reader):
        await cloud.send(authorized_now("v1", 2500))
        started = await cloud.next(Started)
        assert reader.begun == [2500]
        reader.vend(item=3, price=2000)
        reader.end()
        dispensed = await cloud.next(Dispensed)
        ended = await cloud.next(Ended)

        assert (started.vend_id, started.funds) == ("v1", Money(2500, "NOK"))
        assert (dispensed.item, dispensed.price, dispensed.success) == (3, Money(2000, "NOK"), True)
        assert ended.reason == EndReason.COMPLETED
        assert ended.check_total() == Money(2000, "NOK")

        await cloud.ack(started, dispensed, ended)
        await waiter(lambda: not SqliteStore(config.outbox_path).load().pending)
        count = len(cloud.received)
        await asyncio.sleep(1.5)  # three resend intervals
        assert [m for m in cloud.received[count:] if not isinstance(m, Status | Telemetry)] == []


async def test_unacked_events_are_resent_with_the_same_id(
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    async with (
        cloud_for(config.mqtt.redacted(), "m1") as cloud,
        agent_running(config, fake_cashless()),
    ):
        await cloud.send(authorized_now("v1"))
        first = await cloud.next(Started)
        again = await cloud.next(Started)

        assert again == first
        assert [e for e in cloud.committed.values() if isinstance(e, Started)] == [first]


async def test_connect_announces_status_and_hello(
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
) -> None:
    async with (
        cloud_for(config.mqtt.redacted(), "m1") as cloud,
        agent_running(config, fake_cashless()) as agent,
    ):
        status = await cloud.next(Status)
        hello = await cloud.next(Hello)

        assert (status.state, status.boot_id) == (StatusState.ONLINE, agent.boot_id)
        assert (hello.boot_id, hello.open_vends, hello.outbox) == (agent.boot_id, (), 0)
        sock = agent.link._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_telemetry_reports_board_outbox_and_links(
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
) -> None:
    async with (
        cloud_for(config.mqtt.redacted(), "m1") as cloud,
        agent_running(config, fake_cashless()),
    ):
        telemetry = await cloud.next(Telemetry)

    assert (telemetry.board, telemetry.outbox) == ("enabled", 0)
    assert telemetry.extra["link_up"] is True
    assert telemetry.extra["mqtt_connects"] == 1


async def test_bad_commands_are_logged_and_the_agent_keeps_working(
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="vendgate.edge")
    reader = fake_cashless()
    async with cloud_for(config.mqtt.redacted(), "m1") as cloud, agent_running(config, reader):
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
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    reader = fake_cashless(state="disabled")
    async with cloud_for(config.mqtt.redacted(), "m1") as cloud, agent_running(config, reader):
        await cloud.send(authorized_now("v1"))
        down = await cloud.next(Rejected)
        reader.state = "enabled"
        await cloud.send(authorized_now("v2"))
        await cloud.next(Started)
        await cloud.send(authorized_now("v3"))
        busy = await cloud.next(Rejected)

    assert (down.vend_id, down.reason) == ("v1", RejectReason.BOARD_DOWN)
    assert (busy.vend_id, busy.reason) == ("v3", RejectReason.BUSY)


async def test_config_changes_the_selection_timeout(
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    waiter: Waiter,
) -> None:
    reader = fake_cashless()
    async with cloud_for(config.mqtt.redacted(), "m1") as cloud, agent_running(config, reader):
        now = datetime.now(UTC)
        await cloud.send(Config.create(now=now, settings={"selection_timeout_s": 25}))
        await waiter(lambda: reader.selection_timeout_s == 25)

    assert SqliteStore(config.outbox_path).load().settings == {"selection_timeout_s": 25.0}


async def test_events_written_offline_arrive_after_the_broker_returns(
    amqtt_broker: EmbeddedBroker,
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
    waiter: Waiter,
) -> None:
    reader = fake_cashless()
    port = amqtt_broker.port
    async with agent_running(config, reader) as agent:
        async with cloud_for(config.mqtt.redacted(), "m1") as cloud:
            await cloud.send(authorized_now("v1"))
            await cloud.next(Started)
        await amqtt_broker.stop()
        await waiter(lambda: not agent.link.connected)

        reader.vend(item=7, price=1500)  # approval is local: the customer gets the item
        reader.end()
        await waiter(lambda: len(agent.core.outbox) >= 3)

        url = f"mqtt://127.0.0.1:{port}"
        async with EmbeddedBroker(port=port), cloud_for(url, "m1") as cloud:
            ended = await cloud.next(Ended, within_s=15)

    assert ended.vend_id == "v1"
    assert [line.item for line in ended.dispensed] == [7]
    assert ended.total == Money(1500, "NOK")


async def test_a_restart_resends_what_was_never_acked(
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
) -> None:
    async with cloud_for(config.mqtt.redacted(), "m1") as cloud:
        async with agent_running(config, fake_cashless()) as first:
            await cloud.send(authorized_now("v1"))
            started = await cloud.next(Started)
        async with agent_running(config, fake_cashless()) as second:
            again = await cloud.next(Started)
            # the session the first process had open ended with it
            ended = await cloud.next(Ended)

    assert again == started
    assert second.boot_id != first.boot_id
    assert (ended.vend_id, ended.reason) == ("v1", EndReason.BOARD_RESET)
    assert ended.seq > started.seq


async def test_a_missing_reader_port_is_retried_while_mqtt_works(
    config: EdgeConfig,
    fake_cashless: type[FakeCashless],
    agent_running: AgentRunning,
    cloud_for: CloudFor,
    authorized_now: Callable[..., Authorized],
    waiter: Waiter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = fake_cashless(fail_opens=1)
    async with cloud_for(config.mqtt.redacted(), "m1") as cloud, agent_running(config, reader):
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
