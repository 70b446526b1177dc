"""Contract tests: every request the client sends and every response the simulator returns,
for every operation we use, validated against the official OpenAPI files (openapi-core).

The client talks to the simulator through a recording transport that validates each exchange;
the test then checks there were no violations and that every operation was exercised,
including the documented error answers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from vipps_support import SIM_BASE_URL, vend_payment
from werkzeug.datastructures import Headers, ImmutableMultiDict

from vendgate.cloud.vipps import (
    Amount,
    BottomLine,
    OrderLine,
    Receipt,
    RetryPolicy,
    UnitInfo,
    VippsApiError,
    VippsClient,
    VippsSettings,
)
from vendgate.protocol import ManualClock

SPECS = Path(__file__).parent / "vipps-specs"
SPEC_BY_PREFIX = {
    "/accesstoken/": "access-token-api.openapi.v2.0.0.mirror-vipps-friends.yaml",
    "/epayment/": "epayment-api.openapi.v1.8.1.mirror-vipps-friends.yaml",
    "/webhooks/": "webhooks-api.openapi.mirror-vipps-friends.yaml",
    "/qr/": "qr-api.openapi.vippsas.yaml",
    "/order-management/": "order-management-api.openapi.v2.1.vippsas.yaml",
}


# openapi-core parses only application/json as JSON; Vipps' problem bodies are JSON too.
CONFIG = Config(extra_media_type_deserializers={"application/problem+json": json.loads})


class OpenApiRequest:
    """An ``httpx.Request`` seen through openapi-core's request protocol."""

    def __init__(self, request: httpx.Request) -> None:
        url = urlsplit(str(request.url))
        self.host_url = f"{url.scheme}://{url.netloc}"
        self.path = url.path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qs(url.query)),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )


class OpenApiResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = Headers(list(response.headers.items()))
        self.content_type = response.headers.get("content-type", "")
        self.data = response.content or None


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    violations: list[str] = field(default_factory=list)


class ContractTransport(httpx.AsyncBaseTransport):
    """Forwards to the simulator and validates both directions against the official specs."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self._specs: dict[str, OpenAPI] = {}
        self.exchanges: list[Exchange] = []
        self._request_invalid_on_purpose = False

    @contextlib.contextmanager
    def invalid_request_on_purpose(self) -> Iterator[None]:
        """For requests sent wrong to see the error answer: check only the response."""
        self._request_invalid_on_purpose = True
        try:
            yield
        finally:
            self._request_invalid_on_purpose = False

    def _spec(self, path: str) -> OpenAPI | None:
        for prefix, filename in SPEC_BY_PREFIX.items():
            if path.startswith(prefix):
                if filename not in self._specs:
                    self._specs[filename] = OpenAPI.from_file_path(str(SPECS / filename), CONFIG)
                return self._specs[filename]
        return None  # /sim/...: the simulator's own pages (QR images, the phone)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        response = httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )
        spec = self._spec(request.url.path)
        if spec is not None:
            self.exchanges.append(self._check(spec, request, response))
        return response

    def _check(self, spec: OpenAPI, request: httpx.Request, response: httpx.Response) -> Exchange:
        exchange = Exchange(request.method, request.url.path, response.status_code)
        openapi_request = OpenApiRequest(request)
        if not self._request_invalid_on_purpose:
            _collect(exchange, "request", lambda: spec.validate_request(openapi_request))
        openapi_response = OpenApiResponse(response)
        _collect(
            exchange, "response", lambda: spec.validate_response(openapi_request, openapi_response)
        )
        return exchange


def _collect(exchange: Exchange, label: str, check: Callable[[], object]) -> None:
    try:
        check()
    except Exception as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        exchange.violations.append(f"{label}: {type(exc).__name__}: {exc}{cause}")


@pytest.fixture
def contract(sim_app: Litestar) -> ContractTransport:
    return ContractTransport(httpx.ASGITransport(app=sim_app))


@pytest.fixture
async def checked_vipps(
    contract: ContractTransport, clock: ManualClock, retry: RetryPolicy
) -> VippsClient:
    http = httpx.AsyncClient(transport=contract)
    return VippsClient(VippsSettings(base_url=SIM_BASE_URL), http, clock=clock, retry=retry)


def receipt(price: int) -> Receipt:
    tax = price // 5
    line = OrderLine(
        name="Cola 0.5 l",
        id="slot-12",
        total_amount=price,
        total_amount_excluding_tax=price - tax,
        total_tax_amount=tax,
        tax_rate=2500,
        unit_info=UnitInfo(unit_price=price, quantity="1", quantity_unit="PCS"),
    )
    return Receipt(order_lines=[line], bottom_line=BottomLine(currency="NOK", pos_id="machine-7"))


async def expect_error(status: int, call: object) -> VippsApiError:
    with pytest.raises(VippsApiError) as info:
        await call  # type: ignore[misc]
    assert info.value.status == status
    return info.value


async def exercise_epayment(vipps: VippsClient) -> None:
    ref = "vend-contract-0001"
    created = await vipps.epayment.create_payment(vend_payment(ref), idempotency_key="c1-create")
    assert created.redirect_url
    await vipps.epayment.get_payment(ref)
    await vipps.epayment.force_approve(ref)
    await vipps.epayment.capture(ref, Amount(1500, "NOK"), idempotency_key="c1-capture-1")
    await vipps.epayment.capture(ref, Amount(1500, "NOK"), idempotency_key="c1-capture-1")  # replay
    error = await expect_error(
        400, vipps.epayment.capture(ref, Amount(9999, "NOK"), idempotency_key="c1-capture-2")
    )
    assert error.error_code == "6090"
    await expect_error(
        409, vipps.epayment.capture(ref, Amount(1, "NOK"), idempotency_key="c1-capture-1")
    )
    await expect_error(
        400,
        vipps.epayment.cancel(ref, idempotency_key="c1-cancel-only", cancel_transaction_only=True),
    )
    await vipps.epayment.cancel(ref, idempotency_key="c1-cancel")
    await vipps.epayment.refund(ref, Amount(500, "NOK"), idempotency_key="c1-refund")
    await vipps.epayment.get_events(ref)
    await expect_error(409, vipps.epayment.create_payment(vend_payment(ref), idempotency_key="c2"))

    token_payment = vend_payment("vend-contract-0002")
    token_payment.customer = None
    await vipps.epayment.create_payment(token_payment, idempotency_key="c3-create")
    await vipps.epayment.cancel(
        "vend-contract-0002", idempotency_key="c3-cancel", cancel_transaction_only=True
    )


async def exercise_webhooks(vipps: VippsClient) -> None:
    registration = await vipps.webhooks.register(
        "https://pay.example.com/vipps/webhooks?replica=1", ["epayments.payment.captured.v1"]
    )
    await vipps.webhooks.list()
    await vipps.webhooks.delete(registration.id)
    await expect_error(400, vipps.webhooks.register("https://pay.example.com/x", ["no.such.v1"]))


async def exercise_qr(vipps: VippsClient, contract: ContractTransport) -> None:
    await vipps.qr.create_redirect("machine-7", "https://pay.example.com/m/machine-7")
    await vipps.qr.create_redirect(
        "machine 8", "https://pay.example.com/m/8", ttl=3600, image_format="image/png", size=400
    )
    await vipps.qr.get_redirect("machine-7", image_format="text/targetUrl")
    await vipps.qr.list_redirects()
    await vipps.qr.update_redirect("machine-7", "https://pay.example.com/m/machine-7b")
    assert (await vipps.qr.redirect_image("machine-7")).startswith(b"\x89PNG")
    assert b"<svg" in await vipps.qr.redirect_image("machine-7", image_format="image/svg+xml")
    await expect_error(409, vipps.qr.create_redirect("machine-7", "https://pay.example.com/m/7"))
    with contract.invalid_request_on_purpose():
        body = {"id": "bad/id", "redirectUrl": "http://not-https.example.com"}
        await expect_error(
            400,
            vipps.http.call(
                "POST", "/qr/v1/merchant-redirect", body=body, headers={"Accept": "image/png"}
            ),
        )
    await vipps.qr.delete_redirect("machine-7")
    await expect_error(404, vipps.qr.get_redirect("machine-7"))


async def exercise_callback_qr(vipps: VippsClient, contract: ContractTransport) -> None:
    await vipps.qr.put_callback("machine-7", "Kasse 1")
    await vipps.qr.put_callback("machine-7", "Kasse 2")  # an update: the same 200
    await vipps.qr.get_callback("machine-7", image_format="PNG", size=300)
    await vipps.qr.list_callbacks()
    assert (await vipps.qr.callback_image("machine-7")).startswith(b"\x89PNG")
    with contract.invalid_request_on_purpose():
        path = "/qr/v1/merchant-callback/machine-7"
        await expect_error(400, vipps.http.call("PUT", path, body={"locationDescription": 36}))
        await expect_error(400, vipps.http.call("GET", path, params={"QrImageFormat": "GIF"}))
    await vipps.qr.delete_callback("machine-7")
    await expect_error(404, vipps.qr.get_callback("machine-7"))
    await expect_error(404, vipps.qr.delete_callback("machine-7"))


async def exercise_receipts(vipps: VippsClient) -> None:
    receipt_id = await vipps.order_management.post_receipt("vend-contract-0001", receipt(1500))
    assert receipt_id
    await expect_error(
        409, vipps.order_management.post_receipt("vend-contract-0001", receipt(1500))
    )


EXPECTED = {
    ("POST", "/accesstoken/get", 200),
    ("POST", "/epayment/v1/payments", 201),
    ("POST", "/epayment/v1/payments", 409),
    ("GET", "/epayment/v1/payments/vend-contract-0001", 200),
    ("GET", "/epayment/v1/payments/vend-contract-0001/events", 200),
    ("POST", "/epayment/v1/test/payments/vend-contract-0001/approve", 200),
    ("POST", "/epayment/v1/payments/vend-contract-0001/capture", 200),
    ("POST", "/epayment/v1/payments/vend-contract-0001/capture", 400),
    ("POST", "/epayment/v1/payments/vend-contract-0001/capture", 409),
    ("POST", "/epayment/v1/payments/vend-contract-0001/cancel", 200),
    ("POST", "/epayment/v1/payments/vend-contract-0001/cancel", 400),
    ("POST", "/epayment/v1/payments/vend-contract-0002/cancel", 200),
    ("POST", "/epayment/v1/payments/vend-contract-0001/refund", 200),
    ("POST", "/webhooks/v1/webhooks", 201),
    ("POST", "/webhooks/v1/webhooks", 400),
    ("GET", "/webhooks/v1/webhooks", 200),
    ("POST", "/qr/v1/merchant-redirect", 200),
    ("POST", "/qr/v1/merchant-redirect", 400),
    ("POST", "/qr/v1/merchant-redirect", 409),
    ("GET", "/qr/v1/merchant-redirect", 200),
    ("GET", "/qr/v1/merchant-redirect/machine-7", 200),
    ("GET", "/qr/v1/merchant-redirect/machine-7", 404),
    ("PUT", "/qr/v1/merchant-redirect/machine-7", 200),
    ("DELETE", "/qr/v1/merchant-redirect/machine-7", 200),
    ("PUT", "/qr/v1/merchant-callback/machine-7", 200),
    ("PUT", "/qr/v1/merchant-callback/machine-7", 400),
    ("GET", "/qr/v1/merchant-callback", 200),
    ("GET", "/qr/v1/merchant-callback/machine-7", 200),
    ("GET", "/qr/v1/merchant-callback/machine-7", 400),
    ("GET", "/qr/v1/merchant-callback/machine-7", 404),
    ("DELETE", "/qr/v1/merchant-callback/machine-7", 200),
    ("DELETE", "/qr/v1/merchant-callback/machine-7", 404),
    ("POST", "/order-management/v2/ECOM/receipts/vend-contract-0001", 201),
    ("POST", "/order-management/v2/ECOM/receipts/vend-contract-0001", 409),
}


async def test_every_operation_conforms_to_the_official_specs(
    checked_vipps: VippsClient, contract: ContractTransport
) -> None:
    await exercise_epayment(checked_vipps)
    await exercise_webhooks(checked_vipps)
    await exercise_qr(checked_vipps, contract)
    await exercise_callback_qr(checked_vipps, contract)
    await exercise_receipts(checked_vipps)

    violations = [
        f"{e.method} {e.path} -> {e.status}: {v}" for e in contract.exchanges for v in e.violations
    ]
    assert not violations, "\n".join(violations)
    seen = {(e.method, e.path, e.status) for e in contract.exchanges}
    seen_delete = {(m, p.rsplit("/", 1)[0], s) for m, p, s in seen if m == "DELETE"}
    assert ("DELETE", "/webhooks/v1/webhooks", 204) in seen_delete
    assert seen >= EXPECTED, sorted(EXPECTED - seen)
