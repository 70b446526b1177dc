"""Webhook signatures (official test vector), the verifier's refusals, and the simulator's
deliveries: signed like Vipps, after the state change, retried, in order per payment."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from vipps_support import WebhookReceiver, vend_payment

from vendgate.cloud.vipps import (
    EPAYMENT_EVENTS,
    Amount,
    VippsClient,
    WebhookEvent,
    WebhookVerificationError,
    WebhookVerifier,
    content_hash,
    sign_webhook,
    string_to_sign,
)
from vendgate.cloud.vippssim import VippsSimulator, vipps_signature_headers
from vendgate.protocol import ManualClock

# The worked example of Vipps' "Webhooks API: request authentication" page.
SECRET = "A0+AeKBRG2KRGvnNwJpQlb6IJFk48CKXCIcrLoHncVJKDILsQSxS6NWCccwWm6r6FhGKhiHTBsG2wo/xU6FY/A=="
URL = "https://webhook.site/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63"
BODY = b'{"some-unique-content":"ee6e441b-cc4a-46f8-895d-a5af79bcc233/hello-world"}'
DATE = "Thu, 30 Mar 2023 08:38:32 GMT"
DATE_EPOCH = 1680165512.0
EXPECTED_HASH = "lNlsp1XA03N34HrQsVzPgJKtC+r7l/RBF4V3JQUWMj4="
EXPECTED_AUTHORIZATION = (
    "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"
    "&Signature=agAiSyogQbDHpeucoNwYz+yAr5nJ+v+zasdkSbqzv+U="
)


def test_client_signer_reproduces_the_official_vector() -> None:
    assert content_hash(BODY) == EXPECTED_HASH
    assert string_to_sign(URL, DATE, EXPECTED_HASH) == (
        f"POST\n/e2cee29b-012e-4f1d-8ef4-e95fd74a7a63\n{DATE};webhook.site;{EXPECTED_HASH}"
    )
    assert sign_webhook(SECRET, URL, BODY, DATE)["Authorization"] == EXPECTED_AUTHORIZATION


def test_simulator_signer_reproduces_the_official_vector() -> None:
    headers = vipps_signature_headers(SECRET, URL, BODY, DATE_EPOCH)
    assert headers["x-ms-date"] == DATE
    assert headers["x-ms-content-sha256"] == EXPECTED_HASH
    assert headers["Authorization"] == EXPECTED_AUTHORIZATION


def verifier(now: float = DATE_EPOCH + 30, secret: str = SECRET, url: str = URL) -> WebhookVerifier:
    return WebhookVerifier(secret, url, clock=ManualClock(datetime.fromtimestamp(now, UTC)))


def official_headers() -> dict[str, str]:
    return {
        "x-ms-date": DATE,
        "x-ms-content-sha256": EXPECTED_HASH,
        "Authorization": EXPECTED_AUTHORIZATION,
        "Host": "webhook.site",
    }


def test_verifier_accepts_the_official_example() -> None:
    verifier().verify(official_headers(), BODY)


@pytest.mark.parametrize(
    ("case", "check"),
    [
        (
            "changed body",
            lambda: verifier().verify(official_headers(), BODY.replace(b"hello", b"HELLO")),
        ),
        ("changed path", lambda: verifier(url=URL + "x").verify(official_headers(), BODY)),
        (
            "changed host",
            lambda: verifier(url=URL.replace("webhook.site", "evil.example")).verify(
                official_headers(), BODY
            ),
        ),
        ("stale date", lambda: verifier(now=DATE_EPOCH + 3600).verify(official_headers(), BODY)),
        (
            "date from the future",
            lambda: verifier(now=DATE_EPOCH - 3600).verify(official_headers(), BODY),
        ),
        (
            "wrong secret",
            lambda: verifier(secret=SECRET[:-2] + "B=").verify(official_headers(), BODY),
        ),
        (
            "missing signature",
            lambda: verifier().verify(
                {k: v for k, v in official_headers().items() if k != "Authorization"}, BODY
            ),
        ),
        (
            "hash header lies",
            lambda: verifier().verify(
                {**official_headers(), "x-ms-content-sha256": content_hash(b"{}")}, BODY
            ),
        ),
    ],
)
def test_verifier_rejects(case: str, check: object) -> None:
    with pytest.raises(WebhookVerificationError):
        check()  # type: ignore[operator]


async def register(vipps: VippsClient, url: str = "https://pay.example.com/vipps/hook?r=1") -> str:
    registration = await vipps.webhooks.register(url, EPAYMENT_EVENTS)
    assert vipps.webhooks.secrets[registration.id] == registration.secret
    return registration.secret


async def settle_one(vipps: VippsClient, sim: VippsSimulator, ref: str) -> None:
    await vipps.epayment.create_payment(vend_payment(ref), idempotency_key=f"{ref}-create")
    sim.payments.approve(sim.payments.find(ref))
    await vipps.epayment.capture(ref, Amount(1500, "NOK"), idempotency_key=f"{ref}-capture")
    await vipps.epayment.cancel(ref, idempotency_key=f"{ref}-cancel")


async def test_simulator_webhooks_pass_the_client_verifier(
    vipps: VippsClient, sim: VippsSimulator, receiver: WebhookReceiver, clock: ManualClock
) -> None:
    url = "https://pay.example.com/vipps/hook?r=1"
    secret = await register(vipps, url)
    await settle_one(vipps, sim, "vend-hooks-0001")
    await sim.webhooks_idle()

    assert receiver.names() == ["CREATED", "AUTHORIZED", "CAPTURED", "CANCELLED"]
    check = WebhookVerifier(secret, url, clock=clock)
    for request in receiver.requests:
        assert str(request.url) == url
        check.verify(request.headers, request.content)
        event = msgspec.json.decode(request.content, type=WebhookEvent)
        assert (event.msn, event.reference, event.success) == ("123456", "vend-hooks-0001", True)
    amounts = [
        msgspec.json.decode(r.content, type=WebhookEvent).amount.value for r in receiver.requests
    ]
    assert amounts == [5000, 5000, 1500, 3500]


async def test_webhook_is_sent_after_the_state_change(
    vipps: VippsClient, sim: VippsSimulator, receiver: WebhookReceiver
) -> None:
    await register(vipps)
    states: list[str] = []
    receiver.on_request = lambda _: states.append(sim.payments.get("vend-hooks-0002").state)
    await vipps.epayment.create_payment(vend_payment("vend-hooks-0002"), idempotency_key="h2")
    sim.payments.approve(sim.payments.find("vend-hooks-0002"))
    await sim.webhooks_idle()
    assert states == ["AUTHORIZED", "AUTHORIZED"]  # both deliveries ran after approval


async def test_failed_delivery_is_retried_with_backoff_and_blocks_later_events(
    vipps: VippsClient, sim: VippsSimulator, receiver: WebhookReceiver, clock: ManualClock
) -> None:
    await register(vipps)
    receiver.statuses = [500, 503]  # CREATED fails twice, then everything succeeds
    await settle_one(vipps, sim, "vend-hooks-0003")
    await sim.webhooks_idle()

    assert receiver.names() == [
        "CREATED",
        "CREATED",
        "CREATED",
        "AUTHORIZED",
        "CAPTURED",
        "CANCELLED",
    ]
    assert clock.sleeps[:2] == [2.0, 2.0]
    created = sim.dispatcher.records[0]
    assert (created.event, created.attempts, created.statuses) == (
        "epayments.payment.created.v1",
        3,
        [500, 503, 200],
    )


async def test_gives_up_after_the_retry_schedule(
    vipps: VippsClient, sim: VippsSimulator, receiver: WebhookReceiver
) -> None:
    await register(vipps)
    receiver.statuses = [500] * 4
    await vipps.epayment.create_payment(vend_payment("vend-hooks-0004"), idempotency_key="h4")
    await sim.webhooks_idle()
    assert sim.dispatcher.records[0].gave_up
    assert len(receiver.requests) == 4  # first try plus the three configured retries


async def test_faults_drop_and_duplicate_webhooks(
    vipps: VippsClient, sim: VippsSimulator, receiver: WebhookReceiver
) -> None:
    await register(vipps)
    sim.faults.webhook_duplicate_share = 1.0
    await vipps.epayment.create_payment(vend_payment("vend-hooks-0005"), idempotency_key="h5")
    await sim.webhooks_idle()
    assert receiver.names() == ["CREATED", "CREATED"]

    sim.faults.webhook_duplicate_share = 0.0
    sim.faults.webhook_drop_share = 1.0
    sim.payments.approve(sim.payments.find("vend-hooks-0005"))
    await sim.webhooks_idle()
    assert receiver.names() == ["CREATED", "CREATED"]
    assert sim.dispatcher.records[-1].dropped


async def test_only_subscribed_events_are_sent(
    vipps: VippsClient, sim: VippsSimulator, receiver: WebhookReceiver
) -> None:
    await vipps.webhooks.register("https://pay.example.com/h", ["epayments.payment.authorized.v1"])
    await vipps.epayment.create_payment(vend_payment("vend-hooks-0006"), idempotency_key="h6")
    sim.payments.approve(sim.payments.find("vend-hooks-0006"))
    await sim.webhooks_idle()
    assert receiver.names() == ["AUTHORIZED"]
