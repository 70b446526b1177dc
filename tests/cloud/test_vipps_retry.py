"""Retries, the access token and error mapping, against scripted transports (``MockTransport``)
and against the simulator with injected faults: retries end in exactly one effect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import msgspec
import pytest
from vipps_support import SIM_BASE_URL, vend_payment

from vendgate.cloud.vipps import (
    Amount,
    RetryPolicy,
    VippsBadRequest,
    VippsClient,
    VippsRequestInvalid,
    VippsRetryableApiError,
    VippsSettings,
    VippsTimeoutError,
    VippsUnauthorized,
)
from vendgate.cloud.vippssim import VippsSimulator
from vendgate.protocol import ManualClock

TOKEN_BODY = {
    "token_type": "Bearer",
    "expires_in": "3600",
    "ext_expires_in": "3600",
    "expires_on": "0",
    "not_before": "0",
    "resource": "r",
    "access_token": "tok-1",
}
CAPTURED = {
    "amount": {"value": 5000, "currency": "NOK"},
    "state": "AUTHORIZED",
    "pspReference": "1",
    "reference": "vend-retry-0001",
    "aggregate": {
        k: {"value": v, "currency": "NOK"}
        for k, v in (
            ("authorizedAmount", 5000),
            ("cancelledAmount", 0),
            ("capturedAmount", 1500),
            ("refundedAmount", 0),
        )
    },
}

PAYMENT = {**CAPTURED, "paymentMethod": {"type": "WALLET"}, "profile": {}}


class ScriptedVipps:
    """Answers the token call, then the scripted answers in order; records every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.token_calls = 0
        self.authorizations: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/accesstoken/get":
            self.token_calls += 1
            return httpx.Response(
                200, json={**TOKEN_BODY, "access_token": f"tok-{self.token_calls}"}
            )
        self.requests.append(request)
        # The auth flow re-sends the same Request object: note the header as it was sent.
        self.authorizations.append(request.headers.get("Authorization", ""))
        default = PAYMENT if request.method == "GET" else CAPTURED
        answer = self.answers.pop(0) if self.answers else httpx.Response(200, json=default)
        if isinstance(answer, Exception):
            raise answer
        return answer


def scripted_client(script: ScriptedVipps, clock: ManualClock) -> VippsClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(script))
    policy = RetryPolicy(sleep=clock.sleep, max_attempts=4)
    return VippsClient(VippsSettings(base_url=SIM_BASE_URL), http, clock=clock, retry=policy)


def problem(status: int, code: str | None = None, **headers: str) -> httpx.Response:
    body = {
        "type": f"https://httpstatuses.io/{status}",
        "title": "t",
        "status": status,
        "traceId": "trace-1",
        "extraDetails": [{"name": "ErrorCode", "reason": code}] if code else None,
    }
    return httpx.Response(status, json=body, headers=headers)


async def capture(vipps: VippsClient) -> object:
    return await vipps.epayment.capture(
        "vend-retry-0001", Amount(1500, "NOK"), idempotency_key="vend-retry-0001-capture-1"
    )


@pytest.mark.parametrize(
    "failure",
    [
        problem(500, "3010"),
        problem(503),
        problem(423),
        problem(429, **{"Retry-After": "0"}),
        httpx.ReadTimeout("slow"),
        httpx.ConnectError("refused"),
    ],
    ids=["500", "503", "423", "429", "timeout", "connect"],
)
async def test_retryable_failures_are_retried_with_the_same_key(
    failure: httpx.Response | Exception, clock: ManualClock
) -> None:
    script = ScriptedVipps(failure, failure)
    await capture(scripted_client(script, clock))
    assert len(script.requests) == 3
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    bodies = {r.content for r in script.requests}
    assert keys == {"vend-retry-0001-capture-1"}
    assert len(bodies) == 1
    assert len(clock.sleeps) == 2


async def test_retry_after_is_honoured(clock: ManualClock) -> None:
    script = ScriptedVipps(problem(429, **{"Retry-After": "7"}))
    await capture(scripted_client(script, clock))
    assert clock.sleeps == [7.0]


async def test_backoff_grows_with_full_jitter(clock: ManualClock) -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    for attempt, ceiling in ((1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)):
        assert all(0 <= policy.backoff(attempt) <= ceiling for _ in range(50))


async def test_a_no_is_not_retried(clock: ManualClock) -> None:
    script = ScriptedVipps(problem(400, "6090"))
    with pytest.raises(VippsBadRequest) as info:
        await capture(scripted_client(script, clock))
    assert (info.value.status, info.value.error_code, info.value.trace_id) == (
        400,
        "6090",
        "trace-1",
    )
    assert len(script.requests) == 1
    assert clock.sleeps == []


async def test_giving_up_raises_the_last_answer(clock: ManualClock) -> None:
    script = ScriptedVipps(*[problem(502)] * 4)
    with pytest.raises(VippsRetryableApiError) as info:
        await capture(scripted_client(script, clock))
    assert info.value.status == 502
    assert len(script.requests) == 4


async def test_timeouts_surface_as_timeout_errors(clock: ManualClock) -> None:
    script = ScriptedVipps(*[httpx.ReadTimeout("slow")] * 4)
    with pytest.raises(VippsTimeoutError):
        await capture(scripted_client(script, clock))


async def test_post_without_key_is_retried_only_when_not_processed(clock: ManualClock) -> None:
    registered = httpx.Response(
        201, json={"id": "6d1c3c64-9b5c-4f4c-9f0d-2b7b0b1f6f00", "secret": "s"}
    )
    script = ScriptedVipps(problem(429, **{"Retry-After": "1"}), registered)
    await scripted_client(script, clock).webhooks.register("https://x.example/h", ["a"])
    assert len(script.requests) == 2

    script = ScriptedVipps(problem(500))
    with pytest.raises(VippsRetryableApiError):  # it may have been registered: do not repeat
        await scripted_client(script, clock).webhooks.register("https://x.example/h", ["a"])
    assert len(script.requests) == 1


async def test_every_request_carries_the_required_headers(clock: ManualClock) -> None:
    script = ScriptedVipps()
    await capture(scripted_client(script, clock))
    headers = script.requests[0].headers
    assert headers["Authorization"] == "Bearer tok-1"
    for name in (
        "Ocp-Apim-Subscription-Key",
        "Merchant-Serial-Number",
        "Vipps-System-Name",
        "Vipps-System-Version",
        "Vipps-System-Plugin-Name",
        "Vipps-System-Plugin-Version",
    ):
        assert headers[name]


@pytest.mark.parametrize("key", ["", "x" * 51, "has space", "æøå"])
async def test_idempotency_key_is_validated(key: str, clock: ManualClock) -> None:
    script = ScriptedVipps()
    with pytest.raises(VippsRequestInvalid):
        await scripted_client(script, clock).epayment.capture(
            "vend-retry-0001", Amount(1, "NOK"), idempotency_key=key
        )
    assert script.requests == []


@pytest.mark.parametrize("reference", ["short", "has space-123", "x" * 51])
async def test_reference_is_validated(reference: str, clock: ManualClock) -> None:
    with pytest.raises(VippsRequestInvalid):
        await scripted_client(ScriptedVipps(), clock).epayment.create_payment(
            vend_payment(reference), idempotency_key="k"
        )


# -- the access token ----------------------------------------------------------------------


async def test_one_token_fetch_for_concurrent_calls(clock: ManualClock) -> None:
    script = ScriptedVipps()
    vipps = scripted_client(script, clock)
    await asyncio.gather(*(vipps.epayment.get_payment("vend-retry-0001") for _ in range(10)))
    assert script.token_calls == 1


async def test_token_is_renewed_before_it_expires(clock: ManualClock) -> None:
    script = ScriptedVipps()
    vipps = scripted_client(script, clock)
    await vipps.epayment.get_payment("vend-retry-0001")
    clock.advance(3600 - 301)
    await vipps.epayment.get_payment("vend-retry-0001")
    assert script.token_calls == 1
    clock.advance(2)
    await vipps.epayment.get_payment("vend-retry-0001")
    assert script.token_calls == 2
    assert script.requests[-1].headers["Authorization"] == "Bearer tok-2"


async def test_a_401_renews_the_token_once(clock: ManualClock) -> None:
    script = ScriptedVipps(httpx.Response(401, json={"statusCode": 401, "message": "expired"}))
    vipps = scripted_client(script, clock)
    await vipps.epayment.get_payment("vend-retry-0001")
    assert script.token_calls == 2
    assert script.authorizations == ["Bearer tok-1", "Bearer tok-2"]


# -- against the simulator's fault injection -----------------------------------------------


async def faulty(sim: VippsSimulator, **shares: float) -> None:
    for name, value in shares.items():
        setattr(sim.faults, name, value)
    sim.faults.rng.seed(7)


async def count_captures(vipps: VippsClient, ref: str) -> int:
    return [e.name for e in await vipps.epayment.get_events(ref)].count("CAPTURED")


@pytest.mark.parametrize(
    "shares",
    [
        {"error_share": 0.5},
        {"rate_limit_share": 0.5},
        {"error_after_effect_share": 0.5},
        {"error_share": 0.3, "rate_limit_share": 0.3, "error_after_effect_share": 0.3},
    ],
    ids=["5xx", "429", "5xx-after-effect", "mixed"],
)
async def test_retries_through_injected_faults_end_in_one_effect(
    vipps: VippsClient, sim: VippsSimulator, shares: dict[str, float]
) -> None:
    vipps.http._retry.max_attempts = 30
    await faulty(sim, **shares)
    for n in range(5):
        ref = f"vend-faults-{n:04d}"
        await vipps.epayment.create_payment(vend_payment(ref), idempotency_key=f"{ref}-create")
        sim.payments.approve(sim.payments.find(ref))  # the phone is not behind the faults
        await vipps.epayment.capture(ref, Amount(1500, "NOK"), idempotency_key=f"{ref}-cap")
        await vipps.epayment.cancel(ref, idempotency_key=f"{ref}-cancel")
    await faulty(sim, error_share=0, rate_limit_share=0, error_after_effect_share=0)
    for n in range(5):
        ref = f"vend-faults-{n:04d}"
        payment = await vipps.epayment.get_payment(ref)
        assert (
            payment.aggregate.captured_amount.value,
            payment.aggregate.cancelled_amount.value,
        ) == (1500, 3500)
        events = [e.name for e in await vipps.epayment.get_events(ref)]
        assert events == ["CREATED", "AUTHORIZED", "CAPTURED", "CANCELLED"]


async def test_simulator_latency_uses_the_injected_sleep(
    vipps: VippsClient, sim: VippsSimulator, clock: ManualClock
) -> None:
    sim.faults.latency = 0.25
    await vipps.webhooks.list()
    assert clock.sleeps.count(0.25) == 2  # the token call and the list call


# -- the simulator's authentication -------------------------------------------------------


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: h.pop("Authorization"),
        lambda h: h.__setitem__("Authorization", "Bearer not-a-token"),
        lambda h: h.__setitem__("Authorization", h["Authorization"].removeprefix("Bearer ")),
        lambda h: h.pop("Ocp-Apim-Subscription-Key"),
        lambda h: h.__setitem__("Ocp-Apim-Subscription-Key", "wrong"),
    ],
    ids=["no-token", "bad-token", "no-bearer-word", "no-subscription-key", "bad-subscription-key"],
)
async def test_simulator_refuses_bad_credentials(
    vipps: VippsClient, sim_http: httpx.AsyncClient, mangle: Callable[[dict[str, str]], object]
) -> None:
    token = await vipps.access_token()
    headers = {
        "Authorization": f"Bearer {token}",
        "Ocp-Apim-Subscription-Key": "vendgate-demo-subscription-key",
        "Merchant-Serial-Number": "123456",
    }
    assert (await sim_http.get("/webhooks/v1/webhooks", headers=headers)).status_code == 200
    mangle(headers)
    response = await sim_http.get("/webhooks/v1/webhooks", headers=headers)
    assert response.status_code == 401
    assert msgspec.json.decode(response.content)["statusCode"] == 401


async def test_simulator_refuses_wrong_client_secret(
    sim_http: httpx.AsyncClient, clock: ManualClock
) -> None:
    settings = VippsSettings(base_url=SIM_BASE_URL)
    creds = settings.credentials.__class__(client_secret="wrong")
    vipps = VippsClient(
        VippsSettings(base_url=SIM_BASE_URL, credentials=creds), sim_http, clock=clock
    )
    with pytest.raises(VippsUnauthorized):
        await vipps.webhooks.list()


async def test_simulator_tokens_expire(
    vipps: VippsClient, sim: VippsSimulator, clock: ManualClock
) -> None:
    await vipps.webhooks.list()
    sim.tokens.revoke_all()  # as if the hour had passed on Vipps' side only
    await vipps.webhooks.list()  # the client renews on the 401 and carries on
    assert vipps.http.tokens.fetch_count == 2
