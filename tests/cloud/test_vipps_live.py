"""Real HTTP: ``vendgate vipps-sim`` as a subprocess on a loopback port, the client over TCP,
the customer's phone through the landing page or a callback QR's check-in page, and signed
webhooks delivered to a real local HTTP receiver (uvicorn) and verified there."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import msgspec
import pytest
import uvicorn
from vipps_support import vend_payment

from vendgate.cloud.vipps import (
    CHECKED_IN_EVENT,
    EPAYMENT_EVENTS,
    Amount,
    CheckedIn,
    RetryPolicy,
    VippsClient,
    VippsSettings,
    WebhookVerifier,
)


@pytest.fixture(scope="module")
def vipps_sim_url() -> Iterator[str]:
    env = {**os.environ, "VENDGATE_VIPPS_MSN": "654321"}
    process = subprocess.Popen(
        [sys.executable, "-m", "vendgate", "vipps-sim", "--port", "0", "--payment-expiry", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    try:
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0  # SIGTERM is a clean stop


def live_settings(url: str) -> VippsSettings:
    """What the cloud reads from its environment to find and use the simulator."""
    return VippsSettings.from_env({"VENDGATE_VIPPS_BASE_URL": url, "VENDGATE_VIPPS_MSN": "654321"})


class Receiver:
    """A bare ASGI webhook endpoint: keeps each POST's URL, headers and raw body."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append((scope["path"], headers, body))
        self.arrived.set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def serving(app: Receiver) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn only offers a flag
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def wait_for(receiver: Receiver, count: int) -> None:
    async with asyncio.timeout(10):
        while len(receiver.received) < count:
            receiver.arrived.clear()
            await receiver.arrived.wait()


async def test_full_purchase_over_real_http(vipps_sim_url: str) -> None:
    receiver = Receiver()
    async with serving(receiver) as hook_base, httpx.AsyncClient(timeout=5) as http:
        vipps = VippsClient(live_settings(vipps_sim_url), http, retry=RetryPolicy(max_attempts=2))
        hook_url = f"{hook_base}/vipps/webhooks?replica=a"
        registration = await vipps.webhooks.register(hook_url, EPAYMENT_EVENTS)

        ref = "vend-live-0001"
        created = await vipps.epayment.create_payment(vend_payment(ref), idempotency_key=f"{ref}-c")
        assert created.redirect_url is not None
        page = await http.get(created.redirect_url)
        assert 'id="approve"' in page.text
        approve = await http.post(
            page.url.join(f"/sim/landing/{created.redirect_url.split('token=')[1]}/approve")
        )
        assert approve.status_code == 303
        assert approve.headers["location"] == f"https://pay.example.com/status/{ref}"

        await vipps.epayment.capture(ref, Amount(1500, "NOK"), idempotency_key=f"{ref}-cap")
        await vipps.epayment.cancel(ref, idempotency_key=f"{ref}-cancel")
        payment = await vipps.epayment.get_payment(ref)
        assert payment.aggregate.captured_amount.value == 1500
        assert payment.aggregate.cancelled_amount.value == 3500

        await wait_for(receiver, 4)
    verifier = WebhookVerifier(registration.secret, hook_url)
    names = []
    for path, headers, body in receiver.received:
        assert path == "/vipps/webhooks"
        verifier.verify(headers, body)
        event = msgspec.json.decode(body)
        assert event["msn"] == "654321"
        names.append(event["name"])
    assert names == ["CREATED", "AUTHORIZED", "CAPTURED", "CANCELLED"]


async def test_qr_sticker_scan_follows_the_current_target(vipps_sim_url: str) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        vipps = VippsClient(live_settings(vipps_sim_url), http)
        await vipps.qr.create_redirect("machine-1", "https://pay.example.com/m/machine-1")
        content = await vipps.qr.get_redirect("machine-1", image_format="text/targetUrl")
        await vipps.qr.update_redirect("machine-1", "https://pay.example.com/m/moved")
        scan = await http.get(content.url)
        assert scan.status_code == 302
        assert scan.headers["location"] == "https://pay.example.com/m/moved"
        assert (await vipps.qr.redirect_image("machine-1", size=200)).startswith(b"\x89PNG")


async def test_callback_qr_check_in_over_real_http(vipps_sim_url: str) -> None:
    receiver = Receiver()
    async with serving(receiver) as hook_base, httpx.AsyncClient(timeout=5) as http:
        vipps = VippsClient(live_settings(vipps_sim_url), http)
        hook_url = f"{hook_base}/vipps/webhooks"
        registration = await vipps.webhooks.register(hook_url, [CHECKED_IN_EVENT])
        await vipps.qr.put_callback("machine-live-1", "Kiosk")
        sticker = await vipps.qr.get_callback("machine-live-1")
        assert (await vipps.qr.callback_image("machine-live-1")).startswith(b"\x89PNG")

        page = await http.get(sticker.qr_content)  # the phone reads the sticker ...
        assert "Kiosk" in page.text
        pressed = await http.post(page.url.join("/sim/callback-qr/machine-live-1/check-in"))
        assert pressed.status_code == 200  # ... and checks in
        await wait_for(receiver, 1)
        await vipps.webhooks.delete(registration.id)
    [(path, headers, body)] = receiver.received
    assert path == "/vipps/webhooks"
    WebhookVerifier(registration.secret, hook_url).verify(headers, body)
    event = msgspec.json.decode(body, type=CheckedIn)
    assert (event.merchant_qr_id, event.msn) == ("machine-live-1", "654321")
    assert event.customer_token == pressed.json()["customerToken"]
