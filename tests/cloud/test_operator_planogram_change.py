"""An operator's planogram change never reaches a purchase already under way, and a machine
with a purchase open cannot be deleted.

The customer has scanned (the reservation is made from the planogram of that moment); the
operator then raises the price of the item she is about to buy. She pays the price she was
shown; the next customer pays the new one. Money is read from the Vipps simulator's ledger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from flow_support import (
    MAX_PRICE,
    Cloud,
    EdgeScript,
    cloud_settings,
    eventually,
    ledger,
    machine_row,
    running_cloud,
    scan,
    scan_and_approve,
    seed_machine,
    vends_of,
    wait_for_state,
)
from flow_tiers import TIERS, Tier

from vendgate.cloud.machines import SlotBody
from vendgate.protocol import Money
from vendgate.protocol.mqtt import DispensedItem

OLD, NEW = 2500, 3000
DEARER = [SlotBody(item=11, name="Cola", price=NEW, vat_rate=1500)]


@pytest.fixture
async def cloud(tier: Tier) -> AsyncIterator[Cloud]:
    async with running_cloud(cloud_settings(tier.database_url, tier.mqtt)) as running:
        yield running


def cola(price: int) -> DispensedItem:
    return DispensedItem(item=11, price=Money(price, "NOK"), success=True)


async def _online(cloud: Cloud) -> bool:
    return (await machine_row(cloud.parts, "m1")).online


@pytest.mark.parametrize("tier", TIERS, indirect=True)
async def test_a_price_change_mid_purchase_charges_the_price_of_the_scan(
    tier: Tier, cloud: Cloud
) -> None:
    await seed_machine(cloud.parts, "m1")
    async with tier.edge("m1", EdgeScript([cola(OLD)])).online():
        await eventually(lambda: _online(cloud), what="m1 online")
        response = await scan(cloud, "m1")
        assert response.status_code == 302, response.text
        (vend,) = await vends_of(cloud.parts, "m1")
        shown = await cloud.parts.fleet.put_planogram("m1", DEARER)  # the operator, meanwhile
        assert shown.reservation == NEW
        cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
        first = await wait_for_state(cloud.parts, vend.id, "closed")

    paid = ledger(cloud.sim, vend.id)
    assert first.outcome == "paid"
    assert (paid.authorized, paid.captured, paid.cancelled) == (MAX_PRICE, OLD, MAX_PRICE - OLD)

    async with tier.edge("m1", EdgeScript([cola(NEW)])).online():
        await eventually(lambda: _online(cloud), what="m1 online again")
        second = await scan_and_approve(cloud, "m1")
        await wait_for_state(cloud.parts, second.id, "closed")
    after = ledger(cloud.sim, second.id)
    assert (after.authorized, after.captured, after.cancelled) == (NEW, NEW, 0)


@pytest.mark.parametrize("tier", TIERS[:1], indirect=True)
async def test_a_machine_with_a_purchase_open_cannot_be_deleted(tier: Tier, cloud: Cloud) -> None:
    await seed_machine(cloud.parts, "m1")
    async with tier.edge("m1", EdgeScript([cola(OLD)])).online():
        await eventually(lambda: _online(cloud), what="m1 online")
        assert (await scan(cloud, "m1")).status_code == 302
        key = await cloud.parts.api_keys.create("ops", ["machines", "read"])
        headers = {"Authorization": f"Bearer {key.key}"}
        refused = await cloud.http.delete("/api/v1/machines/m1", headers=headers)
        assert refused.status_code == 409, refused.text
        assert "purchase open" in refused.json()["detail"]
        still = await cloud.http.get("/api/v1/machines/m1", headers=headers)
        assert still.json()["open_session"] is not None
