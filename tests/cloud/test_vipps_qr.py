"""The QR API through the client and the simulator: merchant redirect and merchant callback QRs,
and the phone's check-in at a callback QR, which sends a signed ``user.checked-in.v1``.

Everything goes over HTTP to the simulator in process (``httpx.ASGITransport``); the contract
test (``test_vipps_contract.py``) checks the same operations against the official QR spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from flow_support import cloud_settings, eventually, running_cloud, seed_machine, sqlite_url
from vipps_support import WebhookReceiver

from vendgate.cloud.vipps import (
    CHECKED_IN_EVENT,
    EPAYMENT_EVENTS,
    CheckedIn,
    MerchantCredentials,
    VippsBadRequest,
    VippsClient,
    VippsNotFound,
    VippsRequestInvalid,
    VippsUnauthorized,
    WebhookVerifier,
)
from vendgate.cloud.vippssim import VippsSimulator
from vendgate.protocol import ManualClock

CALLBACKS = "/qr/v1/merchant-callback"
REDIRECTS = "/qr/v1/merchant-redirect"


def invalid_params(error: VippsBadRequest) -> list[str]:
    """The field names of a QR API 400 (``invalidParams``)."""
    return [param["name"] for param in error.problem.get("invalidParams", [])]


# -- merchant callback QR ----------------------------------------------------------------------


async def test_put_creates_then_updates_the_location_and_keeps_the_image(
    vipps: VippsClient,
) -> None:
    await vipps.qr.put_callback("machine-7", "Kiosk, 1st floor")
    first = await vipps.qr.get_callback("machine-7")
    assert (first.merchant_serial_number, first.merchant_qr_id) == ("123456", "machine-7")
    assert first.location_description == "Kiosk, 1st floor"
    assert first.qr_image_url.endswith("/sim/callback-qr/machine-7.svg")  # SVG by default
    assert first.qr_content.endswith("/sim/callback-qr/machine-7/scan")

    await vipps.qr.put_callback("machine-7", "Platform 3")  # the last PUT decides
    second = await vipps.qr.get_callback("machine-7")
    assert second.location_description == "Platform 3"
    assert (second.qr_image_url, second.qr_content) == (first.qr_image_url, first.qr_content)


async def test_list_returns_every_callback_qr_in_the_format_asked(vipps: VippsClient) -> None:
    assert await vipps.qr.list_callbacks() == []
    await vipps.qr.put_callback("machine-7", "Kasse 1")
    await vipps.qr.put_callback("machine 8", "Kasse 2")
    listed = await vipps.qr.list_callbacks(image_format="PNG", size=300)
    assert [(qr.merchant_qr_id, qr.location_description) for qr in listed] == [
        ("machine-7", "Kasse 1"),
        ("machine 8", "Kasse 2"),
    ]
    assert listed[1].qr_image_url.endswith("/sim/callback-qr/machine%208.png?size=300")


async def test_the_sticker_image_is_png_or_svg(vipps: VippsClient) -> None:
    await vipps.qr.put_callback("machine-7", "Kasse 1")
    png = await vipps.qr.callback_image("machine-7", size=200)
    assert png.startswith(b"\x89PNG")
    assert b"<svg" in await vipps.qr.callback_image("machine-7", image_format="SVG")


async def test_delete_removes_the_callback_qr(vipps: VippsClient) -> None:
    await vipps.qr.put_callback("machine-7", "Kasse 1")
    await vipps.qr.put_callback("machine-8", "Kasse 2")
    await vipps.qr.delete_callback("machine-7")
    assert [qr.merchant_qr_id for qr in await vipps.qr.list_callbacks()] == ["machine-8"]
    with pytest.raises(VippsNotFound):
        await vipps.qr.get_callback("machine-7")


@pytest.mark.parametrize("operation", ["get", "delete"])
async def test_an_unknown_callback_qr_is_404(vipps: VippsClient, operation: str) -> None:
    call = vipps.qr.get_callback if operation == "get" else vipps.qr.delete_callback
    with pytest.raises(VippsNotFound) as info:
        await call("no-such-qr")
    assert "no-such-qr" in str(info.value.detail)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "locationDescription"),
        ({"locationDescription": 7}, "locationDescription"),
        ({"locationDescription": "x" * 37}, "LocationDescription"),
    ],
)
async def test_a_bad_put_body_is_400_naming_the_field(
    vipps: VippsClient, body: dict[str, Any], field: str
) -> None:
    with pytest.raises(VippsBadRequest) as info:
        await vipps.http.call("PUT", f"{CALLBACKS}/machine-7", body=body)
    assert invalid_params(info.value) == [field]
    with pytest.raises(VippsNotFound):
        await vipps.qr.get_callback("machine-7")  # nothing was created


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"QrImageFormat": "GIF"}, "QrImageFormat"),
        ({"QrImageFormat": "PNG", "QrImageSize": "50"}, "QrImageSize"),
        ({"QrImageSize": "big"}, "QrImageSize"),
    ],
)
async def test_a_bad_image_choice_is_400_naming_it(
    vipps: VippsClient, params: dict[str, str], field: str
) -> None:
    await vipps.qr.put_callback("machine-7", "Kasse 1")
    for path in (CALLBACKS, f"{CALLBACKS}/machine-7"):
        with pytest.raises(VippsBadRequest) as info:
            await vipps.http.call("GET", path, params=params)
        assert invalid_params(info.value) == [field]


async def test_the_client_refuses_a_location_the_api_would_refuse(vipps: VippsClient) -> None:
    with pytest.raises(VippsRequestInvalid, match="36"):
        await vipps.qr.put_callback("machine-7", "x" * 37)
    with pytest.raises(VippsRequestInvalid, match="merchantQrId"):
        await vipps.qr.put_callback("a/b", "Kasse 1")


async def test_callback_qrs_need_the_merchant_serial_number(
    vipps: VippsClient, sim_http: httpx.AsyncClient
) -> None:
    headers = {
        "Authorization": f"Bearer {await vipps.access_token()}",
        "Ocp-Apim-Subscription-Key": MerchantCredentials().subscription_key,
    }
    missing = await sim_http.get(CALLBACKS, headers=headers)
    assert missing.status_code == 400
    assert missing.headers["content-type"] == "application/json"  # the QR API's error shape
    assert "Merchant-Serial-Number" in missing.json()["detail"]
    with pytest.raises(VippsUnauthorized) as info:
        await vipps.http.call("GET", CALLBACKS, headers={"Merchant-Serial-Number": "999999"})
    assert info.value.status == 403


# -- the phone checks in -----------------------------------------------------------------------


async def check_in(sim_http: httpx.AsyncClient, qr_id: str, **body: str) -> httpx.Response:
    return await sim_http.post(f"/sim/callback-qr/{qr_id}/check-in", json=body)


async def test_a_check_in_sends_a_signed_user_checked_in_webhook(
    vipps: VippsClient,
    sim: VippsSimulator,
    sim_http: httpx.AsyncClient,
    receiver: WebhookReceiver,
    clock: ManualClock,
) -> None:
    url = "https://pay.example.com/vipps/webhooks?replica=1"
    registration = await vipps.webhooks.register(url, [CHECKED_IN_EVENT])
    await vipps.webhooks.register("https://pay.example.com/payments-only", EPAYMENT_EVENTS)
    await vipps.qr.put_callback("machine-7", "Kasse 1")

    answer = await check_in(sim_http, "machine-7", customerToken="tok-1")
    assert answer.status_code == 200, answer.text
    await sim.webhooks_idle()

    [request] = receiver.requests  # the ePayment-only registration hears nothing
    assert str(request.url) == url
    WebhookVerifier(registration.secret, url, clock=clock).verify(request.headers, request.content)
    event = msgspec.json.decode(request.content, type=CheckedIn)
    assert event == CheckedIn(
        customer_token="tok-1",
        merchant_qr_id="machine-7",
        msn="123456",
        initiated_at=clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    )
    assert msgspec.json.decode(answer.content, type=CheckedIn) == event
    assert [(r.event, r.reference, r.delivered) for r in sim.dispatcher.records] == [
        (CHECKED_IN_EVENT, "check-in:machine-7", 1)
    ]


async def test_every_check_in_without_a_token_gets_a_new_one(
    vipps: VippsClient, sim: VippsSimulator, sim_http: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    await vipps.webhooks.register("https://pay.example.com/a", [CHECKED_IN_EVENT])
    await vipps.webhooks.register("https://pay.example.com/b", [CHECKED_IN_EVENT])
    await vipps.qr.put_callback("machine-7", "Kasse 1")
    await check_in(sim_http, "machine-7")
    await check_in(sim_http, "machine-7")
    await sim.webhooks_idle()

    events = [msgspec.json.decode(r.content, type=CheckedIn) for r in receiver.requests]
    assert sorted(str(r.url) for r in receiver.requests) == [
        "https://pay.example.com/a",
        "https://pay.example.com/a",
        "https://pay.example.com/b",
        "https://pay.example.com/b",
    ]
    assert len({e.customer_token for e in events}) == 2  # each registration hears both scans


async def test_checking_in_at_an_unknown_qr_is_404_and_sends_nothing(
    vipps: VippsClient, sim: VippsSimulator, sim_http: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    await vipps.webhooks.register("https://pay.example.com/h", [CHECKED_IN_EVENT])
    await vipps.qr.put_callback("machine-7", "Kasse 1")
    await vipps.qr.delete_callback("machine-7")
    answer = await check_in(sim_http, "machine-7")
    assert answer.status_code == 404
    await sim.webhooks_idle()
    assert receiver.requests == []


async def test_a_bad_check_in_body_is_400(sim_http: httpx.AsyncClient, sim: VippsSimulator) -> None:
    sim.callback_qr.put("machine-7", "Kasse 1")
    answer = await sim_http.post("/sim/callback-qr/machine-7/check-in", json={"customerToken": 1})
    assert answer.status_code == 400
    assert "customerToken" in answer.text


async def test_the_qr_content_is_the_phones_check_in_page(
    vipps: VippsClient, sim: VippsSimulator, sim_http: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    await vipps.webhooks.register("https://pay.example.com/h", [CHECKED_IN_EVENT])
    await vipps.qr.put_callback("machine-7", "Kiosk <2>")
    qr = await vipps.qr.get_callback("machine-7")
    page = await sim_http.get(qr.qr_content)
    assert page.status_code == 200
    assert "Kiosk &lt;2&gt;" in page.text
    assert 'action="/sim/callback-qr/machine-7/check-in"' in page.text

    pressed = await sim_http.post("/sim/callback-qr/machine-7/check-in", data={})  # the button
    assert pressed.status_code == 200
    await sim.webhooks_idle()
    assert len(receiver.requests) == 1


async def test_the_cloud_starts_a_payment_for_the_simulated_check_in(tmp_path: Path) -> None:
    """What the cloud registers and verifies is what the simulator sends (no hand-made body)."""
    async with running_cloud(cloud_settings(sqlite_url(tmp_path))) as cloud:
        await seed_machine(cloud.ctx, "m1", online=True, callback_qr_id="qr-m1")
        cloud.sim.callback_qr.put("qr-m1", "Kiosk")
        event = cloud.sim.check_in("qr-m1")

        def tokens() -> list[str | None]:
            requests = [payment.request for payment in cloud.sim.payments.all()]
            return [r.customer.customer_token for r in requests if r.customer is not None]

        async def paid() -> bool:
            return tokens() != []

        await eventually(paid, what="a payment for the checked-in customer")
        assert tokens() == [event.customer_token]
        await cloud.sim.webhooks_idle()
        check_in_record = cloud.sim.dispatcher.records[0]
        assert (check_in_record.event, check_in_record.delivered) == (CHECKED_IN_EVENT, 1)


# -- merchant redirect QR: the answers the contract test does not reach -------------------------


async def test_updating_or_deleting_an_unknown_redirect_qr_is_404(vipps: VippsClient) -> None:
    with pytest.raises(VippsNotFound):
        await vipps.qr.update_redirect("no-such-qr", "https://pay.example.com/m/1")
    with pytest.raises(VippsNotFound):
        await vipps.qr.delete_redirect("no-such-qr")


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "redirectUrl"), ({"redirectUrl": "ftp://pay.example.com/m/7"}, "RedirectUrl")],
)
async def test_a_bad_redirect_update_is_400_and_keeps_the_target(
    vipps: VippsClient, body: dict[str, Any], field: str
) -> None:
    await vipps.qr.create_redirect("machine-7", "https://pay.example.com/m/7")
    with pytest.raises(VippsBadRequest) as info:
        await vipps.http.call(
            "PUT", f"{REDIRECTS}/machine-7", body=body, headers={"Accept": "image/svg+xml"}
        )
    assert invalid_params(info.value) == [field]
    assert (await vipps.qr.get_redirect("machine-7")).redirect_url == "https://pay.example.com/m/7"
