"""The whole agent (core, outbox, MQTT shell) on each broker: the in-process amqtt and a real
mosquitto with the repo's config (passwords and ACL). Each test runs once per broker.

The reader is a fake with ``SerialCashless``'s surface (the real one on a pty is in
test_edge_boardsim.py); the cloud is a plain aiomqtt client speaking the wire format. What only
one broker can show is in test_edge_agent_amqtt.py and test_edge_agent_mosquitto.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from vendgate.edge import SqliteStore
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Authorized,
    Dispensed,
    Ended,
    EndReason,
    Started,
)

if TYPE_CHECKING:
    from conftest import EdgeScene, MqttBroker
    from support.machine import LogLines

AuthorizedNow = Callable[..., Authorized]
Waiter = Callable[..., Awaitable[None]]


async def test_a_vend_reaches_the_cloud_and_stops_after_the_ack(
    scene: EdgeScene, authorized_now: AuthorizedNow, agent_log: LogLines
) -> None:
    reader = scene.reader()
    async with scene.cloud() as cloud, scene.agent(reader):
        await cloud.send(authorized_now("v1", 3000))
        started = await cloud.next(Started)
        assert reader.begun == [3000]
        reader.vend(item=12, price=2500)
        reader.end()
        dispensed = await cloud.next(Dispensed)
        ended = await cloud.next(Ended)

        assert (started.vend_id, started.funds) == ("v1", Money(3000, "NOK"))
        assert (dispensed.item, dispensed.price, dispensed.success) == (
            12,
            Money(2500, "NOK"),
            True,
        )
        assert (ended.reason, ended.total) == (EndReason.COMPLETED, Money(2500, "NOK"))
        assert ended.check_total() == Money(2500, "NOK")
        assert started.seq < dispensed.seq < ended.seq

        await cloud.ack(started, dispensed, ended)
        acked = await agent_log.wait_for("event=outbox.acked", "acked=3", "outbox=0")
        assert not SqliteStore(scene.config.outbox_path).load().pending
        await agent_log.wait_for("event=outbox.checked", "connected=true", after=acked, count=3)
        checks = [agent_log.lines[i] for i in agent_log.matches("event=outbox.", after=acked)]

    # three resend-timer checks (three intervals) since the ack, and none re-sent anything
    assert len(checks) >= 3
    assert all("event=outbox.checked" in line and "resent=0" in line for line in checks), checks


async def test_events_written_offline_arrive_after_the_broker_returns(
    broker: MqttBroker, scene: EdgeScene, authorized_now: AuthorizedNow, waiter: Waiter
) -> None:
    reader = scene.reader()
    async with scene.agent(reader) as agent:
        async with scene.cloud() as cloud:
            await cloud.send(authorized_now("v1"))
            await cloud.next(Started)
        await broker.stop()
        await waiter(lambda: not agent.link.connected)

        reader.vend(item=7, price=1500)  # approval is local: the customer gets the item
        reader.end()
        await waiter(lambda: len(agent.core.outbox) >= 3)

        await broker.start()
        async with scene.cloud() as cloud:
            ended = await cloud.next(Ended, within_s=15)

    assert ended.vend_id == "v1"
    assert [(line.item, line.success) for line in ended.dispensed] == [(7, True)]
    assert ended.total == Money(1500, "NOK")
