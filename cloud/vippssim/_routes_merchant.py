"""Access token, Webhooks API, QR merchant redirect and Order Management receipt routes."""

from __future__ import annotations

from urllib.parse import quote

from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath

from vendgate.cloud.vipps import (
    EPAYMENT_EVENTS,
    AccessTokenResponse,
    MerchantRedirectQr,
    MerchantRedirectQrRequest,
    MerchantRedirectQrUpdate,
    RegisterWebhookRequest,
    Webhook,
    WebhookList,
    WebhookRegistration,
)

from ._payments import decode_body
from ._problems import SimProblem, bad_request
from ._qr_codes import DEFAULT_PNG_SIZE, RedirectQr
from ._responses import AnyRequest, base_url, json_response
from ._simulator import VippsSimulator
from ._webhook_delivery import MAX_REGISTRATIONS_PER_EVENT

KNOWN_EVENTS = {*EPAYMENT_EVENTS, "user.checked-in.v1"}
QR_ACCEPT = ("image/*", "image/png", "image/svg+xml", "text/targeturl")


@post("/accesstoken/get", status_code=200)
async def access_token(
    request: AnyRequest, sim: NamedDependency[VippsSimulator]
) -> Response[bytes]:
    token = sim.issue_token(request.headers)
    now = int(sim.timestamp())
    lifetime = str(sim.tokens.lifetime)
    body = AccessTokenResponse(
        token_type="Bearer",
        expires_in=lifetime,
        ext_expires_in=lifetime,
        expires_on=str(now + sim.tokens.lifetime),
        not_before=str(now),
        resource="00000002-0000-0000-c000-000000000000",
        access_token=token,
    )
    return json_response(body, media_type="application/json;charset=UTF-8")


class WebhooksController(Controller):
    path = "/webhooks/v1/webhooks"

    @post("/", status_code=201)
    async def register(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        body = decode_body(await request.body(), RegisterWebhookRequest)
        _check_registration(sim, body)
        registration = sim.webhooks.register(body.url, body.events)
        return json_response(
            WebhookRegistration(id=registration.id, secret=registration.secret), 201
        )

    @get("/")
    async def list_webhooks(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        hooks = [Webhook(id=r.id, url=r.url, events=list(r.events)) for r in sim.webhooks.all()]
        return json_response(WebhookList(webhooks=hooks))

    @delete("/{webhook_id:str}", status_code=204)
    async def delete_webhook(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], webhook_id: FromPath[str]
    ) -> None:
        sim.authenticate(request.headers, msn_required=False)
        if not sim.webhooks.delete(webhook_id):
            raise SimProblem(404, "Not Found", f"no webhook {webhook_id}")


def _check_registration(sim: NamedDependency[VippsSimulator], body: RegisterWebhookRequest) -> None:
    scheme = body.url.partition("://")[0]
    allowed = ("https",) if sim.settings.require_https else ("https", "http")
    if scheme not in allowed or "://" not in body.url:
        raise bad_request("url must be an absolute https URL", field_name="Url")
    if not body.events:
        raise bad_request("events must not be empty", field_name="Events")
    for event in body.events:
        if event not in KNOWN_EVENTS:
            raise bad_request(f"unknown event {event}", field_name="Events")
        if sim.webhooks.count_for(event) >= MAX_REGISTRATIONS_PER_EVENT:
            raise bad_request(f"at most 25 webhooks per event ({event})", field_name="Events")


class MerchantRedirectController(Controller):
    """The QR API chooses what ``url`` points at from the ``Accept`` header."""

    path = "/qr/v1/merchant-redirect"

    @post("/", status_code=200)
    async def create(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        accept = _accept(request, unsupported_status=415)
        body = decode_body(await request.body(), MerchantRedirectQrRequest, "qr")
        qr = sim.qr.create(body.id, body.redirect_url, body.ttl, sim.timestamp())
        return json_response(_describe(request, sim, qr, accept))

    @get("/")
    async def list_all(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        accept = _accept(request, unsupported_status=400)
        return json_response([_describe(request, sim, qr, accept) for qr in sim.qr.all()])

    @get("/{qr_id:str}")
    async def get_one(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        accept = _accept(request, unsupported_status=400)
        return json_response(_describe(request, sim, sim.qr.get(qr_id), accept))

    @put("/{qr_id:str}")
    async def update(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        accept = _accept(request, unsupported_status=415)
        body = decode_body(await request.body(), MerchantRedirectQrUpdate, "qr")
        qr = sim.qr.update(qr_id, body.redirect_url)
        return json_response(_describe(request, sim, qr, accept))

    @delete("/{qr_id:str}", status_code=200)
    async def remove(
        self, request: AnyRequest, sim: NamedDependency[VippsSimulator], qr_id: FromPath[str]
    ) -> Response[bytes]:
        sim.authenticate(request.headers, msn_required=False)
        sim.qr.delete(qr_id)
        return Response(b"", status_code=200)


def _accept(request: AnyRequest, *, unsupported_status: int) -> str:
    accept = request.headers.get("accept", "")
    if accept.lower() not in QR_ACCEPT:
        detail = (
            f"Accept must be one of image/*, image/png, image/svg+xml, text/targetUrl: {accept!r}"
        )
        raise SimProblem(unsupported_status, "Unsupported Accept", detail, style="qr")
    return accept.lower()


def _describe(
    request: AnyRequest, sim: VippsSimulator, qr: RedirectQr, accept: str
) -> MerchantRedirectQr:
    root = f"{base_url(request, sim.settings.public_url)}/sim/qr/{quote(qr.id, safe='')}"
    if accept == "image/png":
        size = request.headers.get("size") or str(DEFAULT_PNG_SIZE)
        url = f"{root}.png?size={size}"
    elif accept == "text/targeturl":
        url = f"{root}/scan"  # the QR's content: what a camera reads, then follows
    else:
        url = f"{root}.svg"
    return MerchantRedirectQr(
        id=qr.id, url=url, redirect_url=qr.redirect_url, expires_in=qr.expires_in(sim.timestamp())
    )


@post("/order-management/v2/{payment_type:str}/receipts/{order_id:str}", status_code=201)
async def post_receipt(
    request: AnyRequest,
    sim: NamedDependency[VippsSimulator],
    payment_type: FromPath[str],
    order_id: FromPath[str],
) -> Response[bytes]:
    sim.authenticate(request.headers, msn_required=True)
    receipt_id = sim.receipts.post(payment_type, order_id, await request.body())
    return json_response(receipt_id, 201)
