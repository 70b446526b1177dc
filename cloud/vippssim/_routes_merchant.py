"""Access token, Webhooks API and Order Management receipt routes (QR: ``_routes_qr``)."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from vendgate.cloud.vipps import (
    CHECKED_IN_EVENT,
    EPAYMENT_EVENTS,
    AccessTokenResponse,
    RegisterWebhookRequest,
    Webhook,
    WebhookList,
    WebhookRegistration,
)

from ._payments import decode_body
from ._problems import SimProblem, bad_request
from ._responses import AnyRequest, json_response
from ._simulator import VippsSimulator
from ._webhook_delivery import MAX_REGISTRATIONS_PER_EVENT

KNOWN_EVENTS = {*EPAYMENT_EVENTS, CHECKED_IN_EVENT}


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
