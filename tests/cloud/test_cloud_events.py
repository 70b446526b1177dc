"""Machine events into the cloud: decoded strictly, applied once, in any order.

The MQTT handler is driven directly with messages as aiomqtt delivers them (no broker); the
app runs with its reconciler, so settlement really happens against the Vipps simulator.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flow_support import (
    COLA,
    MAX_PRICE,
    Cloud,
    cloud_settings,
    ledger,
    ledger_names,
    machine_row,
    mqtt_message,
    receipt_count,
    running_cloud,
    scan,
    seed_machine,
    sqlite_url,
    vend_row,
    vends_of,
    wait_for_state,
)
from sqlmodel import select

from vendgate.cloud.db import OutboxCommand, VendSession, transaction
from vendgate.cloud.settings import TimingSettings
from vendgate.protocol import ManualClock, Money
from vendgate.protocol.mqtt import (
    Dispensed,
    DispensedItem,
    Ended,
    EndReason,
    Event,
    Message,
    Rejected,
    RejectReason,
    Started,
    Status,
    StatusState,
    TopicTree,
)

TIMING = TimingSettings(
    poll_first=3600, poll_interval=3600, reconcile_interval=0.05, retry_delay=0.1
)
TREE = TopicTree()


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    async with running_cloud(cloud_settings(sqlite_url(tmp_path), timing=TIMING)) as running:
        await seed_machine(running.parts, "m1", online=True)
        await seed_machine(running.parts, "m2", online=True)
        yield running


async def authorized(cloud: Cloud, machine_id: str = "m1") -> VendSession:
    assert (await scan(cloud, machine_id)).status_code == 302
    vend = (await vends_of(cloud.parts, machine_id))[-1]
    cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    return await wait_for_state(cloud.parts, vend.id, "authorized")


async def deliver(cloud: Cloud, machine_id: str, message: Message) -> None:
    topic = message.topic_name and TREE.event(machine_id, message.topic_name)
    if isinstance(message, Status):
        topic = TREE.status(machine_id)
    await cloud.parts.handler(mqtt_message(str(topic), message.encode()))


def started(vend_id: str, seq: int = 1) -> Event:
    return Started.create(now=now(), seq=seq, vend_id=vend_id, funds=Money(MAX_PRICE, "NOK"))


def cola(vend_id: str, seq: int = 2, success: bool = True) -> Event:
    price = Money(COLA.price, "NOK")
    return Dispensed.create(
        now=now(), seq=seq, vend_id=vend_id, item=COLA.item, price=price, success=success
    )


def ended(vend_id: str, seq: int = 3, *items: DispensedItem) -> Event:
    return Ended.create(
        now=now(),
        seq=seq,
        vend_id=vend_id,
        reason=EndReason.COMPLETED,
        dispensed=items,
        currency="NOK",
    )


def one_cola() -> DispensedItem:
    return DispensedItem(item=COLA.item, price=Money(COLA.price, "NOK"), success=True)


async def test_duplicated_events_settle_once(cloud: Cloud) -> None:
    vend = await authorized(cloud)
    events = [started(vend.id), cola(vend.id), ended(vend.id, 3, one_cola())]
    for event in events + events + events:
        await deliver(cloud, "m1", event)
    await wait_for_state(cloud.parts, vend.id, "closed")
    assert ledger_names(cloud.sim, vend.id).count("CAPTURED") == 1
    assert ledger(cloud.sim, vend.id).captured == COLA.price
    assert receipt_count(cloud.sim, vend.id) == 1


async def test_reordered_events_settle_from_the_ended_report(cloud: Cloud) -> None:
    vend = await authorized(cloud)
    for event in [ended(vend.id, 3, one_cola()), cola(vend.id), started(vend.id)]:
        await deliver(cloud, "m1", event)
    settled = await wait_for_state(cloud.parts, vend.id, "closed")
    assert (settled.capture_amount, settled.cancel_amount) == (COLA.price, MAX_PRICE - COLA.price)
    assert ledger(cloud.sim, vend.id).cancelled == MAX_PRICE - COLA.price


async def test_the_same_event_id_twice_is_applied_once(cloud: Cloud) -> None:
    vend = await authorized(cloud)
    await deliver(cloud, "m1", started(vend.id))
    first = cola(vend.id)
    await deliver(cloud, "m1", first)
    await deliver(cloud, "m1", first)  # the edge re-sent it: same id
    lines = (await cloud.http.get(f"/s/{vend.status_token}/state")).json()["items"]
    assert lines == ["Cola"]


async def test_a_machine_cannot_end_another_machines_session(cloud: Cloud) -> None:
    vend = await authorized(cloud, "m1")
    await deliver(cloud, "m2", ended(vend.id, 1, one_cola()))
    assert (await vend_row(cloud.parts, vend.id)).state == "authorized"


async def test_rejection_releases_everything(cloud: Cloud) -> None:
    vend = await authorized(cloud)
    reject = Rejected.create(now=now(), seq=1, vend_id=vend.id, reason=RejectReason.BOARD_DOWN)
    await deliver(cloud, "m1", reject)
    settled = await wait_for_state(cloud.parts, vend.id, "closed")
    assert settled.outcome == "not_charged"
    assert (ledger(cloud.sim, vend.id).captured, ledger(cloud.sim, vend.id).cancelled) == (
        0,
        MAX_PRICE,
    )
    assert receipt_count(cloud.sim, vend.id) == 0


async def test_a_duplicate_command_rejection_is_not_a_refusal(cloud: Cloud) -> None:
    vend = await authorized(cloud)
    await deliver(cloud, "m1", started(vend.id))
    dup = Rejected.create(now=now(), seq=2, vend_id=vend.id, reason=RejectReason.DUPLICATE)
    await deliver(cloud, "m1", dup)
    assert (await vend_row(cloud.parts, vend.id)).state == "vending"


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("vend/v1/m1/evt/ended", b"not json"),
        # Without an id there is nothing to acknowledge (test_cloud_rejected_events.py has
        # the same payloads with one: they are acknowledged and recorded as rejected).
        ("vend/v1/m1/evt/ended", b'{"v": 2, "ts": "2026-01-01T00:00:00Z"}'),
        ("vend/v1/m1/evt/started", b'{"v": 1, "ts": "2026-01-01T00:00:00"}'),
        ("vend/v1/m1/evt/teleport", b'{"v": 1}'),
        ("other/m1/evt/ended", b"{}"),
    ],
)
async def test_malformed_messages_are_logged_and_dropped(
    cloud: Cloud, caplog: pytest.LogCaptureFixture, topic: str, payload: bytes
) -> None:
    vend = await authorized(cloud)
    with caplog.at_level(logging.WARNING, logger="vendgate.cloud.mqtt"):
        await cloud.parts.handler(mqtt_message(topic, payload))
    assert any("dropped a bad message" in r.getMessage() for r in caplog.records)
    assert (await vend_row(cloud.parts, vend.id)).state == "authorized"


async def test_status_messages_apply_in_timestamp_order(cloud: Cloud) -> None:
    early, late = now(), now()
    offline = Status.create(now=late, state=StatusState.OFFLINE, boot_id="b", versions={})
    online = Status.create(now=early, state=StatusState.ONLINE, boot_id="b", versions={})
    await deliver(cloud, "m2", offline)
    await deliver(cloud, "m2", online)  # older: a stale retained copy
    assert not (await machine_row(cloud.parts, "m2")).online
    assert 'data-state="offline"' in (await scan(cloud, "m2")).text


async def test_a_machine_that_never_reports_is_released_by_the_deadline(tmp_path: Path) -> None:
    # The app's clock is stepped past the deadline (well inside the webhooks' max age: the
    # simulator signs them with the real time).
    clock = ManualClock()
    timing = TimingSettings(poll_first=3600, settle_deadline=60, reconcile_interval=0.05)
    async with running_cloud(
        cloud_settings(sqlite_url(tmp_path), timing=timing), clock=clock
    ) as cloud:
        await seed_machine(cloud.parts, "m1", online=True)
        vend = await authorized(cloud)
        clock.advance(timing.settle_deadline - 1)
        await cloud.parts.reconciler.run_once()
        assert (await vend_row(cloud.parts, vend.id)).state == "authorized"  # not yet due
        clock.advance(2)
        settled = await wait_for_state(cloud.parts, vend.id, "closed")
        async with transaction(cloud.parts.sessions) as db:
            commands = (await db.exec(select(OutboxCommand))).all()
    assert settled.outcome == "not_charged"
    assert ledger(cloud.sim, vend.id).cancelled == MAX_PRICE
    # config: the planogram, sent when the machine was added
    assert [c.topic.rsplit("/", 1)[1] for c in commands] == ["config", "authorized", "cancel"]
