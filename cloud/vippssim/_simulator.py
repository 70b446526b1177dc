"""``VippsSimulator``: the simulator's state and services, independent of HTTP.

One instance per simulated merchant. The Litestar app (``create_vipps_sim``) is a thin layer
over it; tests reach in through ``app.state.sim`` to play the customer, change faults, advance
the clock or wait for webhook deliveries.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping

import httpx
import msgspec

from vendgate.cloud.vipps import CHECKED_IN_EVENT, CheckedIn, WebhookEvent
from vendgate.protocol import Clock, SystemClock

from ._payments import PaymentService, iso
from ._problems import SimProblem, Style
from ._qr_codes import CallbackQrStore, RedirectQrStore
from ._receipts import ReceiptStore
from ._settings import SimSettings
from ._tokens import TokenIssuer
from ._webhook_delivery import WebhookDispatcher, WebhookRegistry

Sleep = Callable[[float], Awaitable[None]]


def _unauthorized(message: str) -> SimProblem:
    # 401s come from Azure API Management in front of Vipps, in its own format.
    return SimProblem(401, "Unauthorized", message, body={"statusCode": 401, "message": message})


class VippsSimulator:
    def __init__(
        self,
        settings: SimSettings,
        *,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        webhook_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = SystemClock() if clock is None else clock
        self.sleep = sleep
        self.faults = settings.faults
        self.tokens = TokenIssuer(settings.token_lifetime)
        self.webhooks = WebhookRegistry()
        self.dispatcher = WebhookDispatcher(
            self.faults,
            retry_delays=settings.webhook_retry_delays,
            timeout=settings.webhook_timeout,
            clock=self.clock,
            sleep=sleep,
            http=webhook_http,
        )
        self.payments = PaymentService(
            settings.credentials.msn,
            self.clock,
            lambda: self.settings.payment_expiry,
            self._publish,
        )
        self.qr = RedirectQrStore(settings.require_https)
        self.callback_qr = CallbackQrStore()
        self.receipts = ReceiptStore()

    def timestamp(self) -> float:
        """The wall time in epoch seconds: what tokens, QR expiry and the ledger count in."""
        return self.clock.now().timestamp()

    def _publish(self, event: WebhookEvent) -> None:
        self._send_event(f"epayments.payment.{event.name.lower()}.v1", event.reference, event)

    def _send_event(self, name: str, lane: str, event: object) -> None:
        """Queue ``event`` for every registration subscribed to ``name``, in order per lane."""
        subscribers = self.webhooks.subscribers(name)
        if subscribers:
            self.dispatcher.publish(subscribers, name, lane, msgspec.json.encode(event))

    # -- the customer's phone ------------------------------------------------------------------

    def check_in(self, qr_id: str, customer_token: str | None = None) -> CheckedIn:
        """Scan merchant callback QR ``qr_id`` as the app does: ``user.checked-in.v1`` goes out.

        ``customer_token`` defaults to a fresh random one, shaped like Vipps' (base64).
        """
        self.callback_qr.get(qr_id)  # an unknown QR is a 404, and nobody is told
        event = CheckedIn(
            customer_token=customer_token or base64.b64encode(secrets.token_bytes(45)).decode(),
            merchant_qr_id=qr_id,
            msn=self.settings.credentials.msn,
            initiated_at=iso(self.timestamp()),
        )
        self._send_event(CHECKED_IN_EVENT, f"check-in:{qr_id}", event)
        return event

    # -- authentication ------------------------------------------------------------------------

    def issue_token(self, headers: Mapping[str, str]) -> str:
        creds = self.settings.credentials
        self.check_subscription_key(headers)
        given = (headers.get("client_id", ""), headers.get("client_secret", ""))
        if not (_same(given[0], creds.client_id) and _same(given[1], creds.client_secret)):
            raise _unauthorized("Invalid client_id or client_secret.")
        return self.tokens.issue(self.timestamp())

    def check_subscription_key(self, headers: Mapping[str, str]) -> None:
        key = headers.get("ocp-apim-subscription-key")
        if key is None:
            raise _unauthorized("Access denied due to missing subscription key.")
        if not _same(key, self.settings.credentials.subscription_key):
            raise _unauthorized("Access denied due to invalid subscription key.")

    def authenticate(
        self, headers: Mapping[str, str], *, msn_required: bool, style: Style = "problem"
    ) -> None:
        """The checks every API call passes: subscription key, bearer token, merchant.

        ``style`` is the error body format of the API called, for the 400 and 403 answers.
        """
        self.check_subscription_key(headers)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not self.tokens.valid(token.strip(), self.timestamp()):
            raise _unauthorized("Access token is missing, invalid or expired.")
        msn = headers.get("merchant-serial-number")
        if msn is None:
            if msn_required:
                detail = "Merchant-Serial-Number header is required"
                raise SimProblem(400, "Bad Request", detail, style=style)
            return
        if msn != self.settings.credentials.msn:
            detail = f"these keys do not give access to MSN {msn}"
            raise SimProblem(403, "Forbidden", detail, style=style)

    # -- lifecycle -----------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply the passage of time (payment expiry); the sweeper calls it every second."""
        self.payments.tick()

    async def sweep(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.tick()

    async def webhooks_idle(self) -> None:
        await self.dispatcher.idle()

    async def aclose(self) -> None:
        await self.dispatcher.aclose()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
