"""An event the cloud cannot apply is acknowledged, recorded as rejected and alerted.

A real edge re-sends every event until the cloud acks it, so an event the cloud refuses
without an ack would come back forever (and an edge that sends its outbox in order would
block behind it). A database outage is different: nothing is acked, and the event is applied
once the database is back. The machine is a real MQTT client (the fake edge) publishing to the
running cloud on the embedded broker, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from flow_support import (
    CHOCOLATE,
    COLA,
    FAST,
    MAX_PRICE,
    Cloud,
    FakeEdge,
    cloud_settings,
    eventually,
    ledger,
    machine_row,
    mqtt_message,
    receipt_count,
    running_cloud,
    scan_and_approve,
    seed_machine,
    sqlite_url,
    utc_now,
    vend_row,
    wait_for_state,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import select
from support.postgres import admin_url, create_database, drop_database

from vendgate.broker import EmbeddedBroker
from vendgate.cloud.alerts import AlertKind, alerts_of
from vendgate.cloud.db import Alert, ProcessedMessage, RejectedEvent, transaction
from vendgate.cloud.settings import MqttSettings
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Ack,
    Authorized,
    Dispensed,
    DispensedItem,
    Ended,
    EndReason,
    Event,
    Started,
)

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
]
on_both_databases = pytest.mark.parametrize("database_url", DATABASES, indirect=True)
POISON_PRICE = 10**30
# No settlement by deadline during a test: only the machine's own `ended` closes a session.
TIMING = dataclasses.replace(FAST, settle_deadline=3600)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if getattr(request, "param", "sqlite") == "sqlite":
        yield sqlite_url(tmp_path)
        return
    request.getfixturevalue("postgres_url")  # skips, or fails under CI, without a server
    name, url = create_database()
    yield url
    drop_database(name)


@contextlib.asynccontextmanager
async def cloud_on(database_url: str, broker: EmbeddedBroker) -> AsyncIterator[Cloud]:
    mqtt = MqttSettings(host="127.0.0.1", port=broker.port, reconnect_delay=0.2)
    async with running_cloud(cloud_settings(database_url, mqtt, TIMING)) as running:
        await seed_machine(running.parts, "m1")
        yield running


@pytest.fixture
async def cloud(database_url: str, amqtt_broker: EmbeddedBroker) -> AsyncIterator[Cloud]:
    async with cloud_on(database_url, amqtt_broker) as running:
        yield running


class StepEdge(FakeEdge):
    """A machine that answers `authorized` with `started` only; the test sends what follows.

    ``publish_poison`` sends a `dispensed` whose price no vend board can ask: hand-made JSON
    (the encoder refuses such a price, a broken firmware need not), kept until acked.
    """

    def __init__(self, cloud: Cloud) -> None:
        super().__init__("127.0.0.1", cloud.parts.settings.mqtt.port, "m1")
        self.poison_id = ""
        self.poison_topic = str(self.tree.event("m1", "dispensed"))
        self.poison_payload = b""

    async def _authorized(self, command: Authorized) -> None:
        if command.vend_id not in self.handled_vends:
            self.handled_vends.add(command.vend_id)
            await self.emit(Started, vend_id=command.vend_id, funds=command.amount)

    async def publish_poison(self, vend_id: str) -> None:
        self._seq += 1
        self.poison_id = f"poison-{self._seq}"
        event: dict[str, Any] = {
            "v": 1,
            "id": self.poison_id,
            "ts": utc_now().isoformat(),
            "seq": self._seq,
            "vend_id": vend_id,
            "item": COLA.item,
            "price": {"value": POISON_PRICE, "currency": "NOK"},
            "success": True,
        }
        self.poison_payload = json.dumps(event).encode()
        self.outbox[self.poison_id] = (self.poison_topic, self.poison_payload)
        await self.publish_raw(self.poison_topic, self.poison_payload)

    async def dispense(self, vend_id: str, item: int, price: int) -> Event:
        return await self.emit(
            Dispensed, vend_id=vend_id, item=item, price=Money(price, "NOK"), success=True
        )

    async def end(self, vend_id: str, *lines: tuple[int, int]) -> Event:
        dispensed = [DispensedItem(item=i, price=Money(p, "NOK"), success=True) for i, p in lines]
        return await self.emit(
            Ended, vend_id=vend_id, reason=EndReason.COMPLETED, dispensed=dispensed, currency="NOK"
        )

    def acks_of(self, event_id: str) -> int:
        return sum(1 for c in self.commands if isinstance(c, Ack) and event_id in c.events)


async def vending(cloud: Cloud, edge: StepEdge) -> str:
    """Scan, approve, and wait until the machine's `started` is applied and acked."""

    async def online() -> bool:
        return (await machine_row(cloud.parts, "m1")).online

    await eventually(online, what="machine m1 online")
    vend = await scan_and_approve(cloud, "m1")
    await wait_for_state(cloud.parts, vend.id, "vending")
    await until(lambda: not edge.outbox, "the machine's `started` acked")
    return vend.id


async def until(condition: Any, what: str) -> None:
    """``eventually`` for a fact in memory (the fake edge's own record)."""

    async def check() -> bool:
        return bool(condition())

    await eventually(check, what=what)


async def rejected_rows(cloud: Cloud) -> list[RejectedEvent]:
    async with transaction(cloud.parts.sessions) as db:
        return list((await db.exec(select(RejectedEvent))).all())


async def rejected_alerts(cloud: Cloud) -> list[Alert]:
    async with transaction(cloud.parts.sessions) as db:
        return await alerts_of(db, kind=AlertKind.EVENT_REJECTED)


def warnings_naming(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("vendgate") and r.levelno >= logging.WARNING and text in r.getMessage()
    ]


# -- a poison event --------------------------------------------------------------------------


@on_both_databases
async def test_a_poison_event_is_acked_recorded_alerted_and_the_events_behind_it_applied(
    cloud: Cloud, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vendgate")
    edge = StepEdge(cloud)
    async with edge.online():
        vend_id = await vending(cloud, edge)
        await edge.publish_poison(vend_id)
        # An edge that sends in order waits here: the poison must be acked for it to go on.
        await until(lambda: edge.poison_id in edge.acked, "the poison event acked")
        assert (await vend_row(cloud.parts, vend_id)).state == "vending"
        await edge.dispense(vend_id, COLA.item, COLA.price)
        await edge.end(vend_id, (COLA.item, COLA.price))
        settled = await wait_for_state(cloud.parts, vend_id, "closed")
        await until(lambda: not edge.outbox, "every event behind the poison acked")

    # The Cola behind the poison was charged, nothing else; the rest was released.
    payment = ledger(cloud.sim, vend_id)
    assert (payment.captured, payment.cancelled) == (COLA.price, MAX_PRICE - COLA.price)
    assert settled.outcome == "paid"
    assert receipt_count(cloud.sim, vend_id) == 1
    # The poison is on record once, with its reason and its payload, and alerted once.
    (row,) = await rejected_rows(cloud)
    assert (row.machine_id, row.message_type, row.event_id) == (
        "m1",
        "evt/dispensed",
        edge.poison_id,
    )
    assert "field `price.value`" in row.reason
    assert row.payload == edge.poison_payload
    (alert,) = await rejected_alerts(cloud)
    assert (alert.machine_id, alert.vend_id) == ("m1", vend_id)
    assert edge.poison_id in alert.detail
    assert "price.value" in alert.detail
    # One line says so, however often the edge sent it before the ack reached it.
    assert len(warnings_naming(caplog, edge.poison_id)) == 1


@on_both_databases
async def test_a_resent_poison_is_acked_again_and_recorded_once(cloud: Cloud) -> None:
    edge = StepEdge(cloud)
    async with edge.online():
        vend_id = await vending(cloud, edge)
        await edge.publish_poison(vend_id)
        await until(lambda: edge.poison_id in edge.acked, "the poison event acked")
        acks = edge.acks_of(edge.poison_id)

        # The ack was lost, say: the edge sends the same event (same id) again.
        await edge.publish_raw(edge.poison_topic, edge.poison_payload)
        await until(lambda: edge.acks_of(edge.poison_id) > acks, "the re-sent poison acked")

    assert [row.event_id for row in await rejected_rows(cloud)] == [edge.poison_id]
    assert len(await rejected_alerts(cloud)) == 1
    assert (await vend_row(cloud.parts, vend_id)).state == "vending"


# -- an event that decodes but cannot be applied -----------------------------------------------


async def refuse_dispensed_steps(cloud: Cloud) -> None:
    """Make the database itself refuse to record a `dispensed` (as a broken schema would)."""
    if not cloud.parts.settings.database.is_sqlite:
        ddl = "ALTER TABLE vend_steps ADD CONSTRAINT refuse CHECK (step <> 'edge_dispensed')"
    else:
        ddl = (
            "CREATE TRIGGER refuse BEFORE INSERT ON vend_steps WHEN NEW.step = 'edge_dispensed' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
    async with transaction(cloud.parts.sessions) as db:
        await (await db.connection()).execute(text(ddl))


@on_both_databases
async def test_an_event_whose_application_fails_is_acked_recorded_and_alerted(
    cloud: Cloud,
) -> None:
    edge = StepEdge(cloud)
    async with edge.online():
        vend_id = await vending(cloud, edge)
        await refuse_dispensed_steps(cloud)
        refused = await edge.dispense(vend_id, CHOCOLATE.item, CHOCOLATE.price)
        await until(lambda: refused.id in edge.acked, "the refused `dispensed` acked")
        # What comes behind it is applied: `ended` lists the chocolate, and it is charged.
        ended = await edge.end(vend_id, (CHOCOLATE.item, CHOCOLATE.price))
        await until(lambda: ended.id in edge.acked, "`ended` acked")
        await wait_for_state(cloud.parts, vend_id, "closed")

    (row,) = await rejected_rows(cloud)
    assert (row.message_type, row.event_id) == ("evt/dispensed", refused.id)
    assert "refuse" in row.reason  # the database's own words
    assert Dispensed.decode(row.payload) == refused
    (alert,) = await rejected_alerts(cloud)
    assert (alert.machine_id, alert.vend_id) == ("m1", vend_id)
    assert (ledger(cloud.sim, vend_id).captured, ledger(cloud.sim, vend_id).cancelled) == (
        CHOCOLATE.price,
        MAX_PRICE - CHOCOLATE.price,
    )


# -- a database outage -------------------------------------------------------------------------


@pytest.fixture
async def outage_cloud(
    database_url: str, amqtt_broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cloud]:
    # SQLite waits 30 s for a lock before it fails; a second is enough to see it fail here.
    monkeypatch.setattr("vendgate.cloud.db.engine.SQLITE_BUSY_TIMEOUT_MS", 1000)
    async with cloud_on(database_url, amqtt_broker) as running:
        yield running


@contextlib.asynccontextmanager
async def database_outage(database_url: str) -> AsyncIterator[None]:
    """SQLite: another process holds the write lock. PostgreSQL: the database refuses
    connections and the cloud's are cut, as when the server goes down."""
    database = make_url(database_url).database
    assert database is not None
    if make_url(database_url).get_backend_name() == "sqlite":
        # In a thread: if the cloud holds the write lock this instant, BEGIN IMMEDIATE waits
        # for it, and the cloud can only let go while the event loop runs.
        holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    await admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    await admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )
    try:
        yield
    finally:
        await admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


async def admin(statement: str) -> None:
    connection = await asyncpg.connect(admin_url(), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@on_both_databases
async def test_a_database_outage_acks_nothing_and_the_event_is_applied_afterwards(
    outage_cloud: Cloud, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = outage_cloud
    edge = StepEdge(cloud)
    async with edge.online():
        vend_id = await vending(cloud, edge)
        async with database_outage(database_url):
            cola = await edge.dispense(vend_id, COLA.item, COLA.price)

            def refused() -> bool:
                return any("not acknowledged" in line for line in warnings_naming(caplog, cola.id))

            await until(refused, "the cloud giving up on the event for now")
            assert cola.id not in edge.acked
        # The database is back: the edge's next re-send is applied and acked.
        await until(lambda: cola.id in edge.acked, "the `dispensed` acked after the outage")
        await edge.end(vend_id, (COLA.item, COLA.price))
        await wait_for_state(cloud.parts, vend_id, "closed")

    assert await rejected_rows(cloud) == []
    assert await rejected_alerts(cloud) == []
    assert (ledger(cloud.sim, vend_id).captured, ledger(cloud.sim, vend_id).cancelled) == (
        COLA.price,
        MAX_PRICE - COLA.price,
    )


# -- payloads that do not decode ---------------------------------------------------------------

TS = "2026-01-01T00:00:00Z"
# A `dispensed` that is fine but for a NUL in its vend id, which PostgreSQL text cannot hold:
# the decoder refuses it, so the cloud never asks the database about such a vend.
NUL_VEND = Dispensed.create(
    now=utc_now(), seq=1, vend_id="vs-1", item=1, price=Money(1, "NOK"), success=True
)


@on_both_databases
@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("vend/v1/m1/evt/ended", b'{"v": 2, "id": "e-v2", "ts": "' + TS.encode() + b'"}', "v"),
        ("vend/v1/m1/evt/started", b'{"v": 1, "id": "e-naive", "ts": "2026-01-01T00:00:00"}', "ts"),
        ("vend/v1/m1/evt/teleport", b'{"v": 1, "id": "e-new-kind"}', "no such message type"),
        ("vend/v1/m1/evt/hello", b'{"v": 1, "id": "e-seq", "seq": 1.0}', "seq"),
        (
            "vend/v1/m1/evt/dispensed",
            NUL_VEND.encode().replace(b'"vs-1"', b'"vs-\\u0000"'),
            "vend_id",
        ),
    ],
    ids=["unknown-version", "naive-time", "unknown-event", "float-seq", "nul-in-vend-id"],
)
async def test_an_undecodable_event_that_names_its_id_is_rejected(
    cloud: Cloud, topic: str, payload: bytes, reason: str
) -> None:
    await cloud.parts.handler(mqtt_message(topic, payload))
    (row,) = await rejected_rows(cloud)
    assert row.event_id == json.loads(payload)["id"]
    assert row.message_type == topic.removeprefix("vend/v1/m1/")
    assert reason in row.reason
    assert row.payload == payload
    async with transaction(cloud.parts.sessions) as db:
        assert await db.get(ProcessedMessage, f"evt:m1:{row.event_id}") is not None


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("vend/v1/m1/evt/dispensed", b"not json"),
        ("vend/v1/m1/evt/dispensed", b'["e1"]'),
        ("vend/v1/m1/evt/dispensed", b'{"v": 1, "price": {"value": 1e30}}'),
        ("vend/v1/m1/evt/dispensed", b'{"v": 1, "id": 7}'),
        ("vend/v1/m1/evt/dispensed", b'{"v": 1, "id": ""}'),
        ("vend/v1/m1/evt/dispensed", b'{"v": 1, "id": "e\\u0000"}'),
        ("vend/v1/m1/status", b'{"v": 1, "id": "s1", "state": "sideways"}'),
        ("vend/v1/m1/telemetry", b'{"v": 1, "id": "t1", "uptime_s": -1}'),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-id",
        "int-id",
        "empty-id",
        "nul-id",
        "status",
        "telemetry",
    ],
)
async def test_a_bad_payload_without_an_id_to_ack_is_logged_once_and_dropped(
    cloud: Cloud, caplog: pytest.LogCaptureFixture, topic: str, payload: bytes
) -> None:
    with caplog.at_level(logging.INFO, logger="vendgate"):
        await cloud.parts.handler(mqtt_message(topic, payload))
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in lines] == [f"dropped a bad message on {topic}"]
    assert await rejected_rows(cloud) == []
    assert await rejected_alerts(cloud) == []
