"""Field-safety findings of the money path, on SQLite and PostgreSQL (issue 9, findings 2, 3, 7).

- An abandoned scan is cancelled after the approval window and frees the machine; an approval
  seen after the window unlocks nothing and whatever Vipps reserved is released.
- A webhook is only a hint: the cloud reads the payment back and unlocks with at most what it
  reserved, in its own currency; a webhook that disagrees is alerted, never acted on.
- A settlement that disagrees with Vipps backs off, counts its failures and is alerted once.

The reconciler is driven by hand (``run_once``) on a stepped clock: every step is a fact.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flow_support import (
    COLA,
    MAX_PRICE,
    Cloud,
    cloud_settings,
    ledger,
    mqtt_message,
    payment_event,
    post_webhook,
    running_cloud,
    scan,
    seed_machine,
    sqlite_url,
    vend_row,
    vends_of,
)
from sqlmodel import col, select
from support.postgres import create_database, drop_database

from vendgate.cloud.alerts import AlertKind, alerts_of
from vendgate.cloud.clock import as_utc
from vendgate.cloud.db import OutboxCommand, VendSession, transaction
from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vipps import Amount
from vendgate.protocol import ManualClock, Money
from vendgate.protocol.mqtt import (
    Dispensed,
    DispensedItem,
    Ended,
    EndReason,
    Message,
    Started,
    TopicTree,
)

# Polls only when a webhook hints or the test says so; the approval window is the default.
TIMING = TimingSettings(
    heartbeat_window=86_400,
    settle_deadline=3_600,
    poll_first=3_600,
    poll_interval=3_600,
    retry_delay=2.0,
    approval_timeout=90.0,
)

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    request.getfixturevalue("postgres_url")
    name, url = create_database()
    yield url
    drop_database(name)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def cloud(database_url: str, clock: ManualClock) -> AsyncIterator[Cloud]:
    settings = cloud_settings(database_url, timing=TIMING, run_reconciler=False)
    async with running_cloud(settings, clock=clock) as running:
        await seed_machine(running.parts, "m1", online=True)
        yield running


async def run_reconciler(cloud: Cloud) -> None:
    """One pass, after the webhooks in flight were handled (see ``scanned``)."""
    await cloud.sim.webhooks_idle()
    await cloud.parts.reconciler.run_once()


async def authorized_commands(cloud: Cloud) -> list[OutboxCommand]:
    query = select(OutboxCommand).where(col(OutboxCommand.topic).endswith("/cmd/authorized"))
    async with transaction(cloud.parts.sessions) as db:
        return list((await db.exec(query)).all())


async def alerts(cloud: Cloud, kind: AlertKind) -> list[str]:
    async with transaction(cloud.parts.sessions) as db:
        return [alert.detail for alert in await alerts_of(db, kind=kind)]


async def scanned(cloud: Cloud) -> VendSession:
    response = await scan(cloud, "m1")
    assert response.status_code == 302, response.text
    # The CREATED webhook is handled first: on PostgreSQL its transaction locks the row, and
    # a reconciler pass meanwhile would skip it (FOR UPDATE SKIP LOCKED).
    await cloud.sim.webhooks_idle()
    return (await vends_of(cloud.parts, "m1"))[-1]


async def deliver(cloud: Cloud, message: Message) -> None:
    topic = TopicTree().event("m1", message.topic_name or "")
    await cloud.parts.handler(mqtt_message(str(topic), message.encode()))


# -- finding 2: the approval window ------------------------------------------------------------


async def test_an_abandoned_scan_is_cancelled_after_the_window_and_frees_the_machine(
    cloud: Cloud, clock: ManualClock
) -> None:
    vend = await scanned(cloud)
    assert (await scan(cloud, "m1")).status_code == 409  # busy while the customer decides

    clock.advance(TIMING.approval_timeout - 1)
    await run_reconciler(cloud)
    assert (await vend_row(cloud.parts, vend.id)).state == "awaiting_approval"

    clock.advance(2)
    await run_reconciler(cloud)
    closed = await vend_row(cloud.parts, vend.id)
    assert (closed.state, closed.outcome) == ("closed", "abandoned")
    payment = ledger(cloud.sim, vend.id)
    assert payment.state == "TERMINATED"
    assert (payment.authorized, payment.captured) == (0, 0)

    # A late approval after the cancel reserves nothing and unlocks nothing.
    with pytest.raises(Exception, match="cannot approve a payment in state TERMINATED"):
        cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    await run_reconciler(cloud)
    assert await authorized_commands(cloud) == []

    # The machine is free for the next customer.
    assert (await scan(cloud, "m1")).status_code == 302


async def test_an_approval_seen_after_the_window_is_released_and_unlocks_nothing(
    cloud: Cloud, clock: ManualClock
) -> None:
    vend = await scanned(cloud)
    # The customer approves; the webhook comes, but the cloud looks only after the window.
    cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    clock.advance(TIMING.approval_timeout + 1)
    await run_reconciler(cloud)

    closed = await vend_row(cloud.parts, vend.id)
    assert (closed.state, closed.outcome) == ("closed", "abandoned")
    payment = ledger(cloud.sim, vend.id)
    assert (payment.authorized, payment.captured, payment.cancelled) == (MAX_PRICE, 0, MAX_PRICE)
    assert payment.capturable == 0
    assert await authorized_commands(cloud) == []
    assert len(await alerts(cloud, AlertKind.LATE_APPROVAL)) == 1


async def test_an_approval_within_the_window_unlocks_the_machine(
    cloud: Cloud, clock: ManualClock
) -> None:
    vend = await scanned(cloud)
    clock.advance(TIMING.approval_timeout - 5)
    cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    await run_reconciler(cloud)
    assert (await vend_row(cloud.parts, vend.id)).state == "authorized"
    assert len(await authorized_commands(cloud)) == 1


# -- finding 3: a webhook is a hint ----------------------------------------------------------


async def test_a_signed_webhook_naming_another_amount_unlocks_nothing(cloud: Cloud) -> None:
    vend = await scanned(cloud)
    forged = payment_event(vend.id, "AUTHORIZED", amount=99_999_900).replace(b"NOK", b"EUR")
    assert (await post_webhook(cloud, forged)).status_code == 200
    await run_reconciler(cloud)

    assert (await vend_row(cloud.parts, vend.id)).state == "awaiting_approval"
    assert await authorized_commands(cloud) == []
    disagreements = await alerts(cloud, AlertKind.PAYMENT_DISAGREES)
    assert len(disagreements) == 1
    assert "EUR" in disagreements[0]


async def test_the_unlock_amount_is_read_back_from_vipps_not_taken_from_the_webhook(
    cloud: Cloud,
) -> None:
    vend = await scanned(cloud)
    cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    # A second, correctly signed webhook inflating the amount changes nothing.
    inflated = payment_event(vend.id, "AUTHORIZED", amount=MAX_PRICE * 100)
    await post_webhook(cloud, inflated)
    await run_reconciler(cloud)

    row = await vend_row(cloud.parts, vend.id)
    assert (row.state, row.authorized_amount) == ("authorized", MAX_PRICE)
    (command,) = await authorized_commands(cloud)
    assert b'"value":3500' in command.payload
    assert b'"currency":"NOK"' in command.payload
    assert len(await alerts(cloud, AlertKind.PAYMENT_DISAGREES)) == 1


# -- finding 7: a settlement that disagrees --------------------------------------------------


async def test_a_disagreeing_settlement_backs_off_counts_and_alerts_once(
    cloud: Cloud, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    vend = await scanned(cloud)
    cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    await run_reconciler(cloud)
    # Someone else captures on this payment: Vipps' aggregate will never match our decision.
    await cloud.parts.vipps.epayment.capture(vend.id, Amount(100, "NOK"), idempotency_key="rogue")
    cola = DispensedItem(item=COLA.item, price=Money(COLA.price, "NOK"), success=True)
    now = clock.now()
    await deliver(cloud, Started.create(now=now, seq=1, vend_id=vend.id, funds=cola.price))
    await deliver(
        cloud,
        Dispensed.create(
            now=now, seq=2, vend_id=vend.id, item=cola.item, price=cola.price, success=True
        ),
    )
    await deliver(
        cloud,
        Ended.create(
            now=now,
            seq=3,
            vend_id=vend.id,
            reason=EndReason.COMPLETED,
            dispensed=[cola],
            currency="NOK",
        ),
    )

    waits: list[float] = []
    caplog.set_level(logging.WARNING, logger="vendgate.cloud")
    for attempt in range(1, 9):
        await run_reconciler(cloud)
        row = await vend_row(cloud.parts, vend.id)
        assert row.state == "settling"
        assert row.failures == attempt
        assert row.due_at is not None
        waits.append((as_utc(row.due_at) - clock.now()).total_seconds())
        clock.set(as_utc(row.due_at) + timedelta(milliseconds=1))

    # Exponential, then capped; never the old constant retry.
    assert waits[:4] == [2.0, 4.0, 8.0, 16.0]
    assert waits[-1] == waits[-2] == TIMING.retry_delay * 64
    stuck = await alerts(cloud, AlertKind.SETTLEMENT_STUCK)
    assert len(stuck) == 1
    assert "disagrees" in stuck[0]
    # One clear line per try, naming the try and the wait.
    tries = [r.getMessage() for r in caplog.records if "verify failed (try" in r.getMessage()]
    assert len(tries) == 8
    assert "try 8" in tries[-1]
    # Our own capture and cancel happened once each, whatever the retries.
    events = [event.name for event in ledger(cloud.sim, vend.id).events]
    assert events.count("CAPTURED") == 2  # the rogue one and ours
    assert events.count("CANCELLED") == 1


# -- finding 9: the cloud logs every session transition ---------------------------------------


async def test_every_session_transition_is_one_info_line_with_vend_and_machine(
    cloud: Cloud, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vendgate.cloud")
    vend = await scanned(cloud)
    clock.advance(TIMING.approval_timeout + 1)
    await run_reconciler(cloud)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"vend {vend.id}")]
    transitions = [line for line in lines if " -> " in line]
    assert transitions == [
        f"vend {vend.id} machine m1: creating -> awaiting_approval on payment_created",
        f"vend {vend.id} machine m1: awaiting_approval -> settling on approval_timed_out"
        f" (not approved within 90 s)",
        f"vend {vend.id} machine m1: settling -> closed on settled",
    ]
