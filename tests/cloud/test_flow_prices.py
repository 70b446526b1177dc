"""Price authority end to end: the cloud's planogram is the price, whatever the machine says.

Each scenario runs on the embedded tier (amqtt, SQLite) and the production-shaped one (the
repo's Mosquitto, PostgreSQL). The machine is a fake edge speaking the wire contract; money is
read back from the Vipps simulator's ledger and receipts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from flow_support import (
    COLA,
    MAX_PRICE,
    PLANOGRAM,
    Cloud,
    EdgeScript,
    FakeEdge,
    cloud_settings,
    eventually,
    ledger,
    machine_row,
    receipt_count,
    running_cloud,
    scan_and_approve,
    seed_machine,
    wait_for_state,
)
from flow_tiers import TIERS, Tier
from sqlmodel import col, select

from vendgate.cloud.alerts import AlertKind, alerts_of
from vendgate.cloud.db import Alert, VendStep, transaction
from vendgate.protocol import Money
from vendgate.protocol.mqtt import Config, DispensedItem

NOK = "NOK"
WIRE_PLANOGRAM = [{"item": slot.item, "price": slot.price} for slot in PLANOGRAM]
UNLISTED = 13  # an item the planogram does not list


@pytest.fixture
async def cloud(tier: Tier) -> AsyncIterator[Cloud]:
    async with running_cloud(cloud_settings(tier.database_url, tier.mqtt)) as running:
        yield running


def line(item: int, price: int, vmc_price: int | None = None, success: bool = True) -> Any:
    asked = None if vmc_price is None else Money(vmc_price, NOK)
    return DispensedItem(item=item, price=Money(price, NOK), success=success, vmc_price=asked)


async def purchase(cloud: Cloud, tier: Tier, *attempts: DispensedItem) -> tuple[str, FakeEdge]:
    """The machine comes online, a customer pays and the edge reports ``attempts``."""
    async with tier.edge("m1", EdgeScript(attempts)).online() as edge:
        await eventually(lambda: _online(cloud), what="machine m1 online (its retained status)")
        vend = await scan_and_approve(cloud, "m1")
        await wait_for_state(cloud.parts, vend.id, "closed")
    return vend.id, edge


async def _online(cloud: Cloud) -> bool:
    return (await machine_row(cloud.parts, "m1")).online


async def mismatches(cloud: Cloud, vend_id: str) -> tuple[list[Alert], list[VendStep]]:
    steps = select(VendStep).where(VendStep.vend_id == vend_id, VendStep.step == "price_mismatch")
    async with transaction(cloud.parts.sessions) as db:
        alerts = await alerts_of(db, kind=AlertKind.PRICE_MISMATCH, vend_id=vend_id)
        logged = list((await db.exec(steps.order_by(col(VendStep.id)))).all())
    return alerts, logged


@pytest.mark.parametrize("tier", TIERS, indirect=True)
@pytest.mark.parametrize(
    "reported",
    [
        pytest.param(line(COLA.item, 3500), id="edge-charged-the-vmc-price"),
        pytest.param(line(COLA.item, 2500, vmc_price=3500), id="vmc-asked-more"),
    ],
)
async def test_the_vmc_asks_35_for_a_cola_priced_25_and_the_cloud_captures_25(
    tier: Tier, cloud: Cloud, reported: DispensedItem
) -> None:
    await seed_machine(cloud.parts, "m1")
    vend_id, _ = await purchase(cloud, tier, reported)

    payment = ledger(cloud.sim, vend_id)
    assert (payment.authorized, payment.captured, payment.cancelled) == (
        MAX_PRICE,
        COLA.price,
        MAX_PRICE - COLA.price,
    )
    receipt = cloud.sim.receipts.receipts[("ECOM", vend_id)]
    assert [(o.name, o.total_amount, o.tax_rate) for o in receipt.order_lines] == [
        ("Cola", COLA.price, COLA.vat_rate)
    ]
    alerts, steps = await mismatches(cloud, vend_id)
    assert len(alerts) == len(steps) == 1  # once for the line, though dispensed and ended name it
    assert alerts[0].machine_id == "m1"
    assert "planogram 25.00 NOK" in alerts[0].detail
    assert "35.00 NOK" in alerts[0].detail


@pytest.mark.parametrize("tier", TIERS, indirect=True)
async def test_an_item_missing_from_the_planogram_is_never_charged(
    tier: Tier, cloud: Cloud
) -> None:
    await seed_machine(cloud.parts, "m1")
    vend_id, _ = await purchase(cloud, tier, line(UNLISTED, 2000, vmc_price=2000))

    payment = ledger(cloud.sim, vend_id)
    assert (payment.captured, payment.cancelled) == (0, MAX_PRICE)
    assert receipt_count(cloud.sim, vend_id) == 0
    alerts, _ = await mismatches(cloud, vend_id)
    assert [
        f"item {UNLISTED}" in a.detail and "not in the planogram" in a.detail for a in alerts
    ] == [True]


@pytest.mark.parametrize("tier", TIERS, indirect=True)
async def test_with_vmc_prices_the_reported_price_is_charged_at_the_machines_vat(
    tier: Tier, cloud: Cloud
) -> None:
    await seed_machine(cloud.parts, "m1", price_mode="vmc", vat_rate=1200)
    vend_id, _ = await purchase(cloud, tier, line(UNLISTED, 2000, vmc_price=2000))

    payment = ledger(cloud.sim, vend_id)
    assert (payment.captured, payment.cancelled) == (2000, MAX_PRICE - 2000)
    receipt = cloud.sim.receipts.receipts[("ECOM", vend_id)]
    assert [(o.name, o.total_amount, o.tax_rate) for o in receipt.order_lines] == [
        (f"Item {UNLISTED}", 2000, 1200)  # the machine's VAT, not a constant 25 %
    ]
    assert (await mismatches(cloud, vend_id))[0] == []  # nothing to compare it with


@pytest.mark.parametrize("tier", TIERS, indirect=True)
async def test_the_planogram_goes_to_the_machine_on_hello_and_on_every_change(
    tier: Tier, cloud: Cloud
) -> None:
    await seed_machine(cloud.parts, "m1")
    hello = {"planogram": WIRE_PLANOGRAM, "price_mode": "planogram"}
    changed = {"planogram": [{"item": COLA.item, "price": COLA.price}], "price_mode": "vmc"}
    async with tier.edge("m1", EdgeScript()).online() as edge:

        def received(settings: dict[str, Any]) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return any(isinstance(c, Config) and c.settings == settings for c in edge.commands)

            return check

        await eventually(received(hello), what="cmd/config after hello")
        await seed_machine(cloud.parts, "m1", (COLA,), price_mode="vmc")
        cloud.parts.outbox.set()
        await eventually(received(changed), what="cmd/config after the change")
