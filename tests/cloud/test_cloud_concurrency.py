"""A replica works many sessions and many machines at once, and a deployment registers one
webhook, however many replicas start together.

Each concurrency test is built so that one-at-a-time work cannot finish: a barrier that only
opens when several sessions (or machines) are in hand at the same time. Waiting is for facts;
the bounds only turn a deadlock into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiomqtt
import httpx
import pytest
from flow_support import Cloud, cloud_settings, lifespan_of, running_cloud, seed_machine, sqlite_url

from vendgate.broker import EmbeddedBroker
from vendgate.cloud.app import create_app
from vendgate.cloud.db import VendSession, create_engine, transaction, upgrade_to_head
from vendgate.cloud.mqtt import MqttLink
from vendgate.cloud.reconciler import Reconciler
from vendgate.cloud.settings import MqttSettings
from vendgate.cloud.vippssim import SimSettings, create_vipps_sim
from vendgate.protocol.mqtt import TopicFilter

DEADLOCK_LIMIT_S = 30  # only a deadlock reaches it: the work itself takes milliseconds


# -- the reconciler works sessions side by side -----------------------------------------------


class Gate:
    """A stand-in for the vend service whose work returns only when ``width`` are in hand."""

    def __init__(self, width: int) -> None:
        self.barrier = asyncio.Barrier(width)
        self.worked: list[str] = []

    async def run_claimed(self, vend_id: str) -> None:
        await self.barrier.wait()
        self.worked.append(vend_id)


async def due_sessions(cloud: Cloud, count: int) -> list[str]:
    now = cloud.parts.clock.now()
    ids = []
    for number in range(count):
        await seed_machine(cloud.parts, f"c{number}")
        vend = VendSession(
            id=f"vs-{secrets.token_hex(8)}",
            machine_id=f"c{number}",
            state="settling",
            status_token=secrets.token_urlsafe(8),
            currency="NOK",
            max_amount=3500,
            created_at=now,
            updated_at=now,
            due_at=now - timedelta(seconds=1),
        )
        async with transaction(cloud.parts.sessions) as db:
            db.add(vend)
        ids.append(vend.id)
    return ids


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    settings = cloud_settings(sqlite_url(tmp_path), run_reconciler=False)
    async with running_cloud(settings) as running:
        yield running


async def test_the_reconciler_works_due_sessions_at_once(cloud: Cloud) -> None:
    ids = await due_sessions(cloud, 4)
    gate = Gate(width=4)  # one at a time, the first would wait for the others forever
    parts = cloud.parts
    reconciler = Reconciler(
        gate,  # type: ignore[arg-type]
        parts.sessions,
        asyncio.Event(),
        clock=parts.clock,
        timing=parts.settings.timing,
        postgres=False,
        concurrency=4,
    )
    async with asyncio.timeout(DEADLOCK_LIMIT_S):
        assert await reconciler.run_once() == 4
    assert sorted(gate.worked) == sorted(ids)


async def test_the_reconcilers_bound_holds(cloud: Cloud) -> None:
    await due_sessions(cloud, 3)
    parts = cloud.parts
    in_hand, most = 0, 0

    class Counting:
        async def run_claimed(self, vend_id: str) -> None:
            nonlocal in_hand, most
            in_hand += 1
            most = max(most, in_hand)
            await asyncio.sleep(0)  # let the others start, if the bound allowed them
            in_hand -= 1

    reconciler = Reconciler(
        Counting(),  # type: ignore[arg-type]
        parts.sessions,
        asyncio.Event(),
        clock=parts.clock,
        timing=parts.settings.timing,
        postgres=False,
        concurrency=2,
    )
    assert await reconciler.run_once() == 3
    assert most == 2


# -- the MQTT link handles machines side by side, each in order ------------------------------


def lane(machine_id: str) -> int:
    return zlib.crc32(machine_id.encode()) % 16


@contextlib.asynccontextmanager
async def link_with(
    broker: EmbeddedBroker, handler: object
) -> AsyncIterator[tuple[MqttLink, aiomqtt.Client]]:
    settings = MqttSettings(host="127.0.0.1", port=broker.port or 0, client_id="cloud-lanes")
    link = MqttLink(settings, [TopicFilter("vend/v1/+/evt/#")])
    running = asyncio.create_task(link.run(handler))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(DEADLOCK_LIMIT_S):
            await link.connected.wait()
        async with aiomqtt.Client("127.0.0.1", broker.port or 0, identifier="machines") as client:
            yield link, client
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


@pytest.mark.amqtt
async def test_a_slow_machine_does_not_hold_up_another(amqtt_broker: EmbeddedBroker) -> None:
    slow, quick = "m-slow", "m-quick"
    assert lane(slow) != lane(quick)  # machines in different lanes (a fixed hash)
    quick_done = asyncio.Event()

    async def handler(message: aiomqtt.Message) -> None:
        if f"/{slow}/" in message.topic.value:
            await quick_done.wait()  # handled one at a time, this never returns
        else:
            quick_done.set()

    async with link_with(amqtt_broker, handler) as (_, client):
        await client.publish(f"vend/v1/{slow}/evt/started", b"{}", qos=1)
        await client.publish(f"vend/v1/{quick}/evt/started", b"{}", qos=1)
        async with asyncio.timeout(DEADLOCK_LIMIT_S):
            await quick_done.wait()


@pytest.mark.amqtt
async def test_one_machines_messages_are_handled_in_order(amqtt_broker: EmbeddedBroker) -> None:
    seen: list[bytes] = []
    done = asyncio.Event()

    async def handler(message: aiomqtt.Message) -> None:
        assert isinstance(message.payload, bytes)
        seen.append(message.payload)
        await asyncio.sleep(0)  # give a second worker of the same machine a chance to overtake
        if len(seen) == 40:
            done.set()

    async with link_with(amqtt_broker, handler) as (_, client):
        for number in range(40):
            await client.publish("vend/v1/m1/evt/dispensed", str(number).encode(), qos=1)
        async with asyncio.timeout(DEADLOCK_LIMIT_S):
            await done.wait()
    assert seen == [str(number).encode() for number in range(40)]


@pytest.mark.amqtt
async def test_a_failing_message_does_not_stop_its_lane(amqtt_broker: EmbeddedBroker) -> None:
    handled = asyncio.Event()

    async def handler(message: aiomqtt.Message) -> None:
        if message.payload == b"bad":
            raise RuntimeError("a bug in one message's handling")
        handled.set()

    async with link_with(amqtt_broker, handler) as (_, client):
        await client.publish("vend/v1/m1/evt/x", b"bad", qos=1)
        await client.publish("vend/v1/m1/evt/x", b"good", qos=1)
        async with asyncio.timeout(DEADLOCK_LIMIT_S):
            await handled.wait()


# -- one webhook registration per deployment -------------------------------------------------


async def test_replicas_starting_together_register_one_webhook(database_url: str) -> None:
    url = database_url
    sim_app = create_vipps_sim(SimSettings())
    settings = cloud_settings(url, run_reconciler=False)
    replicas = [
        create_app(settings, vipps_transport=httpx.ASGITransport(app=sim_app)) for _ in range(3)
    ]
    engine = create_engine(url)  # the schema first: three migrations at once is not this test
    await upgrade_to_head(engine)
    await engine.dispose()
    async with contextlib.AsyncExitStack() as stack:
        await asyncio.gather(*(stack.enter_async_context(lifespan_of(r)) for r in replicas))
        registered = sim_app.state.sim.webhooks.all()
    assert len(registered) == 1
