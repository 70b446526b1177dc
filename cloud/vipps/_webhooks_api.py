"""Webhooks API v1: register, list and delete webhook registrations."""

from __future__ import annotations

from collections.abc import Iterable

from ._http import VippsHttp, decode
from ._schemas import RegisterWebhookRequest, Webhook, WebhookList, WebhookRegistration

WEBHOOKS = "/webhooks/v1/webhooks"

EPAYMENT_EVENTS = (
    "epayments.payment.created.v1",
    "epayments.payment.aborted.v1",
    "epayments.payment.expired.v1",
    "epayments.payment.cancelled.v1",
    "epayments.payment.captured.v1",
    "epayments.payment.refunded.v1",
    "epayments.payment.authorized.v1",
    "epayments.payment.terminated.v1",
)
CHECKED_IN_EVENT = "user.checked-in.v1"


class WebhooksApi:
    def __init__(self, http: VippsHttp) -> None:
        self._http = http
        # Vipps shows a registration's secret once; keep it for the verifier.
        self.secrets: dict[str, str] = {}

    async def register(self, url: str, events: Iterable[str]) -> WebhookRegistration:
        body = RegisterWebhookRequest(url=url, events=list(events))
        response = await self._http.call("POST", WEBHOOKS, body=body)
        registration = decode(response, WebhookRegistration)
        self.secrets[registration.id] = registration.secret
        return registration

    async def list(self) -> list[Webhook]:
        return decode(await self._http.call("GET", WEBHOOKS), WebhookList).webhooks

    async def delete(self, webhook_id: str) -> None:
        await self._http.call("DELETE", f"{WEBHOOKS}/{webhook_id}")
        self.secrets.pop(webhook_id, None)
