"""HTTP behaviour of the cloud: scan refusals, the payment request, status page, webhooks.

The app runs with its lifespan (SQLite, the reconciler) and the Vipps simulator in process;
no broker (machines are marked online in the database, as their status message would).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from flow_support import (
    MAX_PRICE,
    PUBLIC_URL,
    Cloud,
    cloud_settings,
    ledger,
    payment_event,
    post_webhook,
    running_cloud,
    scan,
    seed_machine,
    sqlite_url,
    vends_of,
    wait_for_state,
)
from sqlmodel import select

from vendgate.cloud.db import OutboxCommand, transaction
from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vippssim import VippsSimulator
from vendgate.protocol import ManualClock
from vendgate.protocol.mqtt import Authorized, decode

# Polling is far away: these tests see what webhooks alone do.
SLOW_POLL = TimingSettings(poll_first=3600, poll_interval=3600, reconcile_interval=0.05)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def cloud(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Cloud]:
    settings = cloud_settings(sqlite_url(tmp_path), timing=SLOW_POLL)
    async with running_cloud(settings, clock=clock) as running:
        await seed_machine(running.parts, "m1", online=True)
        yield running


def payment_count(sim: VippsSimulator) -> int:
    return len(sim.payments._payments)


async def test_unknown_machine_gets_a_404_page(cloud: Cloud) -> None:
    response = await scan(cloud, "nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert payment_count(cloud.sim) == 0


async def test_a_machine_never_heard_from_is_offline(cloud: Cloud) -> None:
    await seed_machine(cloud.parts, "m2")
    response = await scan(cloud, "m2")
    assert response.status_code == 409
    assert 'data-state="offline"' in response.text
    assert payment_count(cloud.sim) == 0


async def test_a_machine_silent_past_the_heartbeat_window_is_offline(
    cloud: Cloud, clock: ManualClock
) -> None:
    clock.advance(cloud.parts.settings.timing.heartbeat_window + 1)
    response = await scan(cloud, "m1")
    assert 'data-state="offline"' in response.text
    assert payment_count(cloud.sim) == 0


async def test_a_disabled_machine_is_out_of_order(cloud: Cloud) -> None:
    async with transaction(cloud.parts.sessions) as db:
        from vendgate.cloud.db import Machine

        machine = await db.get(Machine, "m1")
        assert machine is not None
        machine.disabled = True
        db.add(machine)
    response = await scan(cloud, "m1")
    assert 'data-state="disabled"' in response.text
    assert payment_count(cloud.sim) == 0


async def test_scan_creates_the_max_price_payment_and_redirects_to_vipps(cloud: Cloud) -> None:
    response = await scan(cloud, "m1")
    assert response.status_code == 302
    (vend,) = await vends_of(cloud.parts, "m1")
    request = cloud.sim.payments.find(vend.id).request
    assert request.amount.value == MAX_PRICE
    assert request.customer_interaction == "CUSTOMER_PRESENT"
    assert request.user_flow == "WEB_REDIRECT"
    assert request.return_url == f"{PUBLIC_URL}/s/{vend.status_token}"
    assert response.headers["location"] == cloud.sim.payments.find(vend.id).redirect_url


async def test_status_page_shows_only_its_own_session(cloud: Cloud) -> None:
    await scan(cloud, "m1")
    (vend,) = await vends_of(cloud.parts, "m1")
    page = await cloud.http.get(f"/s/{vend.status_token}")
    assert page.status_code == 200
    assert 'id="status" data-state="waiting"' in page.text
    state = (await cloud.http.get(f"/s/{vend.status_token}/state")).json()
    assert state["state"] == "waiting"
    assert vend.id not in page.text  # the reference is not shown
    assert (await cloud.http.get("/s/guessed-token/state")).status_code == 404
    assert (await cloud.http.get("/s/guessed-token")).status_code == 404


async def test_webhook_with_a_bad_signature_is_a_401_problem(cloud: Cloud) -> None:
    await scan(cloud, "m1")
    (vend,) = await vends_of(cloud.parts, "m1")
    response = await post_webhook(cloud, payment_event(vend.id, "AUTHORIZED"), secret="wrong")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401
    unsigned = await cloud.http.post("/vipps/webhooks", content=b"{}")
    assert unsigned.status_code == 401
    assert (await vends_of(cloud.parts, "m1"))[0].state == "awaiting_approval"


async def test_a_stale_webhook_is_refused(cloud: Cloud) -> None:
    await scan(cloud, "m1")
    (vend,) = await vends_of(cloud.parts, "m1")
    old = await post_webhook(cloud, payment_event(vend.id, "AUTHORIZED"), at=1_000_000_000)
    assert old.status_code == 401


async def authorized_commands(cloud: Cloud) -> list[Authorized]:
    async with transaction(cloud.parts.sessions) as db:
        rows = (await db.exec(select(OutboxCommand))).all()
    return [decode("cmd/authorized", r.payload) for r in rows if r.topic.endswith("/authorized")]  # type: ignore[misc]


async def test_duplicated_and_reordered_webhooks_change_nothing_after_the_first(
    cloud: Cloud,
) -> None:
    await scan(cloud, "m1")
    (vend,) = await vends_of(cloud.parts, "m1")
    cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    authorized = payment_event(vend.id, "AUTHORIZED")
    for body in (authorized, authorized, payment_event(vend.id, "ABORTED"), authorized):
        assert (await post_webhook(cloud, body)).status_code == 200
    await wait_for_state(cloud.parts, vend.id, "authorized")
    await cloud.parts.reconciler.run_once()  # whatever the hints made due has run
    (after,) = await vends_of(cloud.parts, "m1")
    assert after.state == "authorized"
    commands = await authorized_commands(cloud)
    assert [c.vend_id for c in commands] == [vend.id]
    assert commands[0].amount.value == MAX_PRICE


async def test_the_simulator_webhook_alone_authorizes(cloud: Cloud) -> None:
    await scan(cloud, "m1")
    (vend,) = await vends_of(cloud.parts, "m1")
    cloud.sim.payments.approve(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    # The webhook is a hint: the payment is read back at once, long before the first poll.
    await wait_for_state(cloud.parts, vend.id, "authorized")


async def test_an_aborted_payment_closes_the_session_and_frees_the_machine(cloud: Cloud) -> None:
    await scan(cloud, "m1")
    (vend,) = await vends_of(cloud.parts, "m1")
    cloud.sim.payments.reject(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    closed = await wait_for_state(cloud.parts, vend.id, "closed")
    assert (closed.state, closed.outcome) == ("closed", "payment_aborted")
    state = (await cloud.http.get(f"/s/{vend.status_token}/state")).json()
    assert (state["state"], state["final"]) == ("cancelled", True)
    assert (await scan(cloud, "m1")).status_code == 302  # the machine is free again
    assert ledger(cloud.sim, vend.id).captured == 0


async def test_malformed_webhook_body_is_a_400_problem(cloud: Cloud) -> None:
    response = await post_webhook(cloud, b'{"reference": 5}')
    assert response.status_code == 400
    assert response.json()["title"] == "Malformed webhook"


async def test_merchant_callback_check_in_creates_a_push_payment_once(cloud: Cloud) -> None:
    await seed_machine(cloud.parts, "m3", online=True, callback_qr_id="qr-m3")
    checkin = msgspec.json.encode(
        {"customerToken": "tok-123", "merchantQrId": "qr-m3", "msn": "123456"}
    )
    assert (await post_webhook(cloud, checkin)).status_code == 200
    assert (await post_webhook(cloud, checkin)).status_code == 200  # delivered twice
    (vend,) = await vends_of(cloud.parts, "m3")
    request = cloud.sim.payments.find(vend.id).request
    assert request.customer is not None
    assert request.customer.customer_token == "tok-123"
    assert request.user_flow == "PUSH_MESSAGE"
    assert vend.mode == "callback"
    assert payment_count(cloud.sim) == 1
