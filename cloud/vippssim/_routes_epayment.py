"""ePayment API v1 routes: thin wrappers over ``PaymentService``."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from ._responses import AnyRequest, base_url, json_response
from ._simulator import VippsSimulator

# The spec declares the capture/cancel/refund 200 body as application/problem+json (a quirk
# kept on purpose, so the answers validate against it; clients must parse either).
ADJUST_MEDIA_TYPE = "application/problem+json"


async def _adjust(
    request: AnyRequest,
    sim: VippsSimulator,
    reference: str,
    operation: Callable[[str, bytes, str | None], object],
) -> Response[bytes]:
    """Capture, cancel and refund share one shape: authenticate, apply with the key, answer."""
    sim.authenticate(request.headers, msn_required=True)
    key = request.headers.get("idempotency-key")
    result = operation(reference, await request.body(), key)
    return json_response(result, media_type=ADJUST_MEDIA_TYPE)


class EPaymentController(Controller):
    path = "/epayment/v1"

    @post("/payments", status_code=201)
    async def create_payment(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=True)
        created = sim.payments.create(
            await request.body(),
            request.headers.get("idempotency-key"),
            base_url(request, sim.settings.public_url),
        )
        return json_response(created, 201)

    @get("/payments/{reference:str}")
    async def get_payment(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], reference: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=True)
        return json_response(sim.payments.get(reference))

    @get("/payments/{reference:str}/events")
    async def get_events(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], reference: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=True)
        return json_response(sim.payments.events(reference))

    @post("/payments/{reference:str}/capture", status_code=200)
    async def capture(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], reference: FromPath[str]
    ) -> Response[bytes]:
        return await _adjust(request, sim, reference, sim.payments.capture)

    @post("/payments/{reference:str}/cancel", status_code=200)
    async def cancel(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], reference: FromPath[str]
    ) -> Response[bytes]:
        return await _adjust(request, sim, reference, sim.payments.cancel)

    @post("/payments/{reference:str}/refund", status_code=200)
    async def refund(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], reference: FromPath[str]
    ) -> Response[bytes]:
        return await _adjust(request, sim, reference, sim.payments.refund)

    @post("/test/payments/{reference:str}/approve", status_code=200)
    async def force_approve(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], reference: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=True)
        sim.payments.force_approve(reference, await request.body())
        return Response(b"", status_code=200)
