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
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, TypeVar

import msgspec
from litestar import Request, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from vendgate.cloud.customer import Purchases
from vendgate.cloud.db import (
    Machine,
    ProcessedMessage,
    SessionFactory,
    WebhookRegistration,
    transaction,
)
from vendgate.cloud.errors import BadWebhook, MachineUnavailable, MalformedWebhook
from vendgate.cloud.settings import WebhookSettings
from vendgate.cloud.vends import PaymentHinted, VendService
from vendgate.cloud.vipps import (
    CHECKED_IN_EVENT,
    EPAYMENT_EVENTS,
    CheckedIn,
    VippsClient,
    VippsError,
    WebhookEvent,
    WebhookVerificationError,
    WebhookVerifier,
)
from vendgate.protocol import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")


# The advisory lock of the webhook registration (any constant that no other lock uses).
LOCK_KEY = 0x76656E64  # "vend"


class Ok(msgspec.Struct):
    status: str = "ok"


@dataclass(frozen=True)
class Webhooks:
    """What the webhook endpoint does: check the signature, then hand a payment event to the
    vend service as a hint, or start the purchase a check-in asks for. Also registers our
    webhook URL with Vipps when the app starts."""

    settings: WebhookSettings
    url: str  # ours, as Vipps signs it
    sessions: SessionFactory
    vends: VendService
    purchases: Purchases
    _: KW_ONLY
    clock: Clock
    # The registrations' secrets as last read: a webhook is checked against these without a
    # transaction; one they do not verify makes us read them again (a new registration).
    _known: list[str] = field(default_factory=list)

    async def receive(self, headers: Mapping[str, str], body: bytes) -> None:
        try:
            self.verify(await self.secrets(), headers, body)
        except BadWebhook:
            if self.settings.secret:
                raise
            self.verify(await self.secrets(fresh=True), headers, body)
        document = _decode(body, dict)
        if "merchantQrId" in document:
            await self._checked_in(_decode(body, CheckedIn))
        else:
            await self._payment_event(_decode(body, WebhookEvent))

    async def secrets(self, *, fresh: bool = False) -> list[str]:
        if self.settings.secret:
            return [self.settings.secret]
        if self._known and not fresh:
            return list(self._known)
        async with transaction(self.sessions) as db:
            query = select(WebhookRegistration).where(WebhookRegistration.url == self.url)
            self._known[:] = [row.secret for row in (await db.exec(query)).all()]
        return list(self._known)

    def verify(self, secrets: Sequence[str], headers: Mapping[str, str], body: bytes) -> None:
        """Accept the request if any of our registrations' secrets signed it (fresh date)."""
        problems = []
        for secret in secrets:
            verifier = WebhookVerifier(
                secret,
                self.url,
                clock=self.clock,
                max_age=self.settings.max_age,
            )
            try:
                verifier.verify(headers, body)
                return
            except WebhookVerificationError as exc:
                problems.append(str(exc))
        raise BadWebhook("; ".join(problems) or "no webhook secret is configured")

    async def _payment_event(self, event: WebhookEvent) -> None:
        """A hint: the vend service checks what it claims and makes the read-back due now.

        Not deduplicated: a repeat costs one more read of the payment and moves nothing.
        """
        hint = PaymentHinted(event.name, event.amount.value, event.amount.currency)
        log.info(
            "vend %s: webhook %s (a hint: reading the payment back)", event.reference, event.name
        )
        if not await self.vends.hint(event.reference, hint):
            log.warning("webhook for unknown payment %s", event.reference)

    async def _checked_in(self, checkin: CheckedIn) -> None:
        token_hash = hashlib.sha256(checkin.customer_token.encode()).hexdigest()
        key = f"checkin:{checkin.merchant_qr_id}:{token_hash}"
        async with transaction(self.sessions) as db:
            if await db.get(ProcessedMessage, key) is not None:
                return
            query = select(Machine).where(Machine.callback_qr_id == checkin.merchant_qr_id)
            machine = (await db.exec(query)).first()
        if machine is None:
            log.warning("check-in at unknown QR %s", checkin.merchant_qr_id)
            return
        try:
            await self.purchases.start(
                machine.id, customer_token=checkin.customer_token, dedup_key=key
            )
        except MachineUnavailable as exc:
            # Nobody to show a page to: the app shows the request never came. Log why.
            log.info("check-in at %s refused: %s", machine.id, exc.detail)
        except IntegrityError:
            log.info("check-in %s handled concurrently", key)

    async def ensure_registered(self, vipps: VippsClient) -> None:
        """Register our webhook URL with Vipps once per deployment and keep its secret.

        Replicas starting together would each find no registration and each register one, and
        Vipps would then send every event once per registration. So the look and the register
        happen under one lock: PostgreSQL's advisory lock (or SQLite's write lock, which every
        transaction here takes first). It is the one transaction that spans an HTTP call, once,
        at start.
        """
        if self.settings.secret or not self.settings.register:
            return
        async with transaction(self.sessions) as db:
            if db.get_bind().dialect.name == "postgresql":
                lock = text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=LOCK_KEY)
                await (await db.connection()).execute(lock)  # (exec takes no raw SQL)
            query = select(WebhookRegistration).where(WebhookRegistration.url == self.url)
            if (await db.exec(query)).first() is not None:
                return
            try:
                events = [*EPAYMENT_EVENTS, CHECKED_IN_EVENT]
                registration = await vipps.webhooks.register(self.url, events)
            except VippsError as exc:
                log.warning("could not register the Vipps webhook (polling still works): %s", exc)
                return
            db.add(
                WebhookRegistration(
                    id=registration.id,
                    url=self.url,
                    secret=registration.secret,
                    created_at=self.clock.now(),
                )
            )
        log.info("registered Vipps webhook %s for %s", registration.id, self.url)


def webhook_handler(path: str) -> HTTPRouteHandler:
    """The endpoint at ``path``; it takes the app's one ``Webhooks`` as ``webhooks``."""

    @post(path, status_code=200, tags=["vipps"])
    async def vipps_webhook(
        request: Request[Any, Any, Any], webhooks: NamedDependency[Webhooks]
    ) -> Ok:
        await webhooks.receive(dict(request.headers), await request.body())
        return Ok()

    return vipps_webhook


def _decode(body: bytes, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.MsgspecError as exc:
        raise MalformedWebhook(f"unreadable webhook body: {exc}") from exc
