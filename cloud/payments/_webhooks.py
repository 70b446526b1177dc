"""The Vipps webhook endpoint: verify the signature, take the hint, answer fast.

An ePayment event is only a hint, however well signed: it makes the reconciler read the
payment back now (``GET /epayment/v1/payments/{reference}``), and that read moves the session
(the vend service). An AUTHORIZED event naming another amount or currency than the reservation is
alerted. A ``user.checked-in.v1`` for a machine's callback QR starts a purchase with the
customer's token; a repeated check-in (keyed on QR + token) starts nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from litestar import Request, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from vendgate.cloud.context import CloudContext
from vendgate.cloud.customer import start_purchase
from vendgate.cloud.db import Machine, ProcessedMessage, WebhookRegistration, transaction
from vendgate.cloud.errors import BadWebhook, MachineUnavailable, MalformedWebhook
from vendgate.cloud.vends import PaymentHinted
from vendgate.cloud.vipps import (
    CHECKED_IN_EVENT,
    EPAYMENT_EVENTS,
    CheckedIn,
    VippsError,
    WebhookEvent,
    WebhookVerificationError,
    WebhookVerifier,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class _ContextClock:
    """``ctx.clock`` as a ``vendgate.protocol.Clock``, which the Vipps package takes."""

    def __init__(self, ctx: CloudContext) -> None:
        self._ctx = ctx

    def now(self) -> datetime:
        return self._ctx.clock()

    def monotonic(self) -> float:
        return time.monotonic()


class Ok(msgspec.Struct):
    status: str = "ok"


async def webhook_secrets(ctx: CloudContext) -> list[str]:
    if ctx.settings.webhooks.secret:
        return [ctx.settings.webhooks.secret]
    async with transaction(ctx.sessions) as db:
        query = select(WebhookRegistration).where(
            WebhookRegistration.url == ctx.settings.webhook_url
        )
        return [row.secret for row in (await db.exec(query)).all()]


def verify(
    ctx: CloudContext, secrets: Sequence[str], headers: Mapping[str, str], body: bytes
) -> None:
    """Accept the request if any of our registrations' secrets signed it (fresh date)."""
    problems = []
    for secret in secrets:
        verifier = WebhookVerifier(
            secret,
            ctx.settings.webhook_url,
            clock=_ContextClock(ctx),
            max_age=ctx.settings.webhooks.max_age,
        )
        try:
            verifier.verify(headers, body)
            return
        except WebhookVerificationError as exc:
            problems.append(str(exc))
    raise BadWebhook("; ".join(problems) or "no webhook secret is configured")


def webhook_handler(path: str) -> HTTPRouteHandler:
    @post(path, status_code=200, tags=["vipps"])
    async def vipps_webhook(
        request: Request[Any, Any, Any], ctx: NamedDependency[CloudContext]
    ) -> Ok:
        body = await request.body()
        verify(ctx, await webhook_secrets(ctx), dict(request.headers), body)
        document = _decode(body, dict)
        if "merchantQrId" in document:
            await _checked_in(ctx, _decode(body, CheckedIn))
        else:
            await _payment_event(ctx, _decode(body, WebhookEvent))
        return Ok()

    return vipps_webhook


def _decode(body: bytes, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.MsgspecError as exc:
        raise MalformedWebhook(f"unreadable webhook body: {exc}") from exc


async def _payment_event(ctx: CloudContext, event: WebhookEvent) -> None:
    """A hint: the vend service checks what it claims and makes the read-back due now.

    Not deduplicated: a repeat costs one more read of the payment and moves nothing.
    """
    hint = PaymentHinted(event.name, event.amount.value, event.amount.currency)
    log.info("vend %s: webhook %s (a hint: reading the payment back)", event.reference, event.name)
    if await ctx.vends.apply(event.reference, hint) is None:
        log.warning("webhook for unknown payment %s", event.reference)
        return
    ctx.kick_work()


async def _checked_in(ctx: CloudContext, checkin: CheckedIn) -> None:
    token_hash = hashlib.sha256(checkin.customer_token.encode()).hexdigest()
    key = f"checkin:{checkin.merchant_qr_id}:{token_hash}"
    async with transaction(ctx.sessions) as db:
        if await db.get(ProcessedMessage, key) is not None:
            return
        query = select(Machine).where(Machine.callback_qr_id == checkin.merchant_qr_id)
        machine = (await db.exec(query)).first()
    if machine is None:
        log.warning("check-in at unknown QR %s", checkin.merchant_qr_id)
        return
    try:
        await start_purchase(ctx, machine.id, customer_token=checkin.customer_token, dedup_key=key)
    except MachineUnavailable as exc:
        # Nobody to show a page to: the app shows the request never came. Log why.
        log.info("check-in at %s refused: %s", machine.id, exc.detail)
    except IntegrityError:
        log.info("check-in %s handled concurrently", key)


async def ensure_webhook_registered(ctx: CloudContext) -> None:
    """Register our webhook URL with Vipps once and keep its secret (shared by replicas)."""
    settings = ctx.settings
    if settings.webhooks.secret or not settings.webhooks.register:
        return
    if await webhook_secrets(ctx):
        return
    try:
        events = [*EPAYMENT_EVENTS, CHECKED_IN_EVENT]
        registration = await ctx.vipps.webhooks.register(settings.webhook_url, events)
    except VippsError as exc:
        log.warning("could not register the Vipps webhook (polling still works): %s", exc)
        return
    async with transaction(ctx.sessions) as db:
        db.add(
            WebhookRegistration(
                id=registration.id,
                url=settings.webhook_url,
                secret=registration.secret,
                created_at=ctx.clock(),
            )
        )
    log.info("registered Vipps webhook %s for %s", registration.id, settings.webhook_url)
