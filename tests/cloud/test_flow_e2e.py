"""The purchase end to end: scan, approve, unlock, dispense, settle, receipt.

Each scenario runs on both tiers: the embedded one (amqtt broker, SQLite) and the
production-shaped one (the repo's Mosquitto with its ACL and shared subscriptions,
PostgreSQL). The machine is a fake edge speaking the wire contract over MQTT; the customer
approves in the Vipps simulator; every money assertion reads the simulator's ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from flow_support import (
    CHOCOLATE,
    COLA,
    MAX_PRICE,
    Cloud,
    EdgeScript,
    cloud_settings,
    eventually,
    ledger,
    ledger_names,
    machine_row,
    receipt_count,
    running_cloud,
    scan,
    scan_and_approve,
    seed_machine,
    vends_of,
    wait_for_state,
)
from flow_tiers import TIERS, Tier
from support.mosquitto import Mosquitto

from vendgate.protocol import Money
from vendgate.protocol.mqtt import DispensedItem, EndReason


@pytest.fixture
async def cloud(tier: Tier) -> AsyncIterator[Cloud]:
    async with running_cloud(cloud_settings(tier.database_url, tier.mqtt)) as running:
        await seed_machine(running.parts, "m1")
        yield running


async def machine_online(cloud: Cloud) -> None:
    async def online() -> bool:
        return (await machine_row(cloud.parts, "m1")).online

    await eventually(online, what="machine m1 online (its retained status)")


@pytest.mark.parametrize("tier", TIERS, indirect=True)
async def test_normal_purchase_captures_the_price_and_releases_the_rest(
    tier: Tier, cloud: Cloud
) -> None:
    async with tier.edge("m1", EdgeScript.buys(COLA.price)).online() as edge:
        await machine_online(cloud)
        vend = await scan_and_approve(cloud, "m1")
        settled = await wait_for_state(cloud.parts, vend.id, "closed")

    payment = ledger(cloud.sim, vend.id)
    assert (payment.authorized, payment.captured, payment.cancelled) == (
        MAX_PRICE,
        COLA.price,
        MAX_PRICE - COLA.price,
    )
    assert ledger_names(cloud.sim, vend.id).count("CAPTURED") == 1
    assert ledger_names(cloud.sim, vend.id).count("CANCELLED") == 1
    assert receipt_count(cloud.sim, vend.id) == 1
    assert settled.outcome == "paid"
    assert all(event.id in edge.acked for event in edge.sent)  # every event acked
    status = (await cloud.http.get(f"/s/{vend.status_token}/state")).json()
    assert (status["state"], status["paid"], status["released"]) == (
        "paid",
        "25.00 NOK",
        "10.00 NOK",
    )
    page = (await cloud.http.get(f"/s/{vend.status_token}")).text
    assert 'data-state="paid"' in page
    assert "You paid 25.00 NOK and 10.00 NOK was released." in page


@pytest.mark.parametrize("tier", TIERS, indirect=True)
@pytest.mark.parametrize(
    "script",
    [
        pytest.param(EdgeScript.buys(CHOCOLATE.price, success=False), id="jammed-motor"),
        pytest.param(EdgeScript(end_reason=EndReason.TIMEOUT), id="walk-away"),
    ],
)
async def test_nothing_dispensed_captures_nothing_and_posts_no_receipt(
    tier: Tier, cloud: Cloud, script: EdgeScript
) -> None:
    async with tier.edge("m1", script).online():
        await machine_online(cloud)
        vend = await scan_and_approve(cloud, "m1")
        settled = await wait_for_state(cloud.parts, vend.id, "closed")

    payment = ledger(cloud.sim, vend.id)
    assert (payment.captured, payment.cancelled) == (0, MAX_PRICE)
    assert "CAPTURED" not in ledger_names(cloud.sim, vend.id)
    assert receipt_count(cloud.sim, vend.id) == 0
    assert settled.outcome == "not_charged"


@pytest.mark.parametrize("tier", TIERS, indirect=True)
async def test_scan_of_a_busy_machine_creates_no_payment(tier: Tier, cloud: Cloud) -> None:
    async with tier.edge("m1", EdgeScript.buys(COLA.price)).online():
        await machine_online(cloud)
        first = await scan(cloud, "m1")
        assert first.status_code == 302
        payments_before = len(cloud.sim.payments._payments)

        second = await scan(cloud, "m1")

    assert second.status_code == 409
    assert 'data-state="busy"' in second.text
    assert len(cloud.sim.payments._payments) == payments_before == 1
    assert len(await vends_of(cloud.parts, "m1")) == 1


@pytest.mark.parametrize("tier", TIERS, indirect=True)
async def test_two_items_in_one_session_capture_their_sum(tier: Tier, cloud: Cloud) -> None:
    script = EdgeScript(
        [
            DispensedItem(item=COLA.item, price=Money(COLA.price, "NOK"), success=True),
            DispensedItem(item=COLA.item, price=Money(COLA.price, "NOK"), success=False),
        ]
    )
    async with tier.edge("m1", script).online():
        await machine_online(cloud)
        vend = await scan_and_approve(cloud, "m1")
        await wait_for_state(cloud.parts, vend.id, "closed")

    payment = ledger(cloud.sim, vend.id)
    assert (payment.captured, payment.cancelled) == (COLA.price, MAX_PRICE - COLA.price)
    receipt = cloud.sim.receipts.receipts[("ECOM", vend.id)]
    assert [line.total_amount for line in receipt.order_lines] == [COLA.price]


@pytest.mark.parametrize("tier", TIERS[1:], indirect=True)
async def test_the_cloud_reconnects_after_the_broker_restarts(
    tier: Tier, cloud: Cloud, request: pytest.FixtureRequest
) -> None:
    mosquitto: Mosquitto = request.getfixturevalue("mosquitto")
    link = cloud.parts.link
    assert link is not None
    await eventually(lambda: _true(link.connected.is_set()), what="first connection")
    await asyncio.to_thread(mosquitto.stop)
    await eventually(lambda: _true(not link.connected.is_set()), what="the link noticing")
    await asyncio.to_thread(mosquitto.start)
    await eventually(lambda: _true(link.connected.is_set()), what="reconnection")

    async with tier.edge("m1", EdgeScript.buys(COLA.price)).online():
        await machine_online(cloud)
        vend = await scan_and_approve(cloud, "m1")
        await wait_for_state(cloud.parts, vend.id, "closed")
    assert ledger(cloud.sim, vend.id).captured == COLA.price


async def _true(value: bool) -> bool:
    return value
