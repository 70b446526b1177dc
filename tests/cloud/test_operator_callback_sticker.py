"""A machine in merchant-callback mode, end to end from its sticker.

Created through the operator API with a merchant-callback QR; its sticker (PNG, read back by a
QR decoder) carries that QR's content, the simulator plays the phone: the customer's camera
opens the content, the phone checks in (a signed ``user.checked-in.v1`` from the simulator),
the cloud starts the payment for that customer, who approves; the machine (a fake edge on the
embedded broker) drops the item; the cloud captures its price and releases the rest.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import zxingcpp
from flow_support import (
    Cloud,
    EdgeScript,
    cloud_settings,
    eventually,
    ledger,
    machine_row,
    running_cloud,
    vends_of,
    wait_for_state,
)
from flow_tiers import Tier
from PIL import Image

from vendgate.protocol import Money
from vendgate.protocol.mqtt import DispensedItem

MACHINE, QR_ID = "kiosk-7", "qr-kiosk-7"
SLOTS = [
    {"item": 11, "name": "Cola", "price": 2500, "vat_rate": 1500},
    {"item": 12, "name": "Kaffe", "price": 3500, "vat_rate": 1500},
]
COLA, RESERVED = 2500, 3500


@pytest.fixture
async def cloud(tier: Tier) -> AsyncIterator[Cloud]:
    async with running_cloud(cloud_settings(tier.database_url, tier.mqtt)) as running:
        yield running


def decoded(png: bytes) -> str:
    [result] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(result.text)


@pytest.mark.parametrize("tier", ["embedded"], indirect=True, ids=["amqtt-sqlite"])
@pytest.mark.amqtt
async def test_a_callback_machine_sells_through_the_qr_on_its_sticker(
    tier: Tier, cloud: Cloud
) -> None:
    key = await cloud.parts.api_keys.create("setup", ["read", "machines"])
    operator = {"Authorization": f"Bearer {key.key}"}
    body = {"id": MACHINE, "name": "Kiosk", "location": "Lobby", "callback_qr_id": QR_ID}
    created = await cloud.http.post(
        "/api/v1/machines", json={**body, "slots": SLOTS}, headers=operator
    )
    assert created.status_code == 201, created.text

    sticker = await cloud.http.get(f"/api/v1/machines/{MACHINE}/sticker", headers=operator)
    assert sticker.status_code == 200, sticker.text
    content = decoded(sticker.content)
    qr = await cloud.parts.vipps.qr.get_callback(QR_ID)
    assert content == qr.qr_content  # the sticker carries the callback QR, not our scan URL
    assert qr.location_description == "Lobby"

    line = DispensedItem(item=11, price=Money(COLA, "NOK"), success=True)
    async with tier.edge(MACHINE, EdgeScript([line])).online():
        await eventually(lambda: _online(cloud), what=f"{MACHINE} online")
        page = await cloud.sim_http.get(content)  # the phone opens what the camera read
        assert page.status_code == 200
        assert 'id="check-in"' in page.text
        checked_in = await cloud.sim_http.post(content.removesuffix("/scan") + "/check-in")
        assert checked_in.status_code == 200, checked_in.text

        async def started() -> bool:
            return bool(await vends_of(cloud.parts, MACHINE))

        await eventually(started, what="a purchase started by the check-in")
        (vend,) = await vends_of(cloud.parts, MACHINE)
        await eventually(
            lambda: _payment_created(cloud, vend.id), what="the payment for the checked-in customer"
        )
        cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
        settled = await wait_for_state(cloud.parts, vend.id, "closed")

    payment = ledger(cloud.sim, vend.id)
    assert settled.outcome == "paid"
    assert settled.mode == "callback"
    assert (payment.authorized, payment.captured, payment.cancelled) == (
        RESERVED,
        COLA,
        RESERVED - COLA,
    )


async def _online(cloud: Cloud) -> bool:
    return (await machine_row(cloud.parts, MACHINE)).online


async def _payment_created(cloud: Cloud, vend_id: str) -> bool:
    return any(p.request.reference == vend_id for p in cloud.sim.payments.all())
