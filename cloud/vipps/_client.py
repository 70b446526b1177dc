"""``VippsClient``: one merchant configuration, its token, and the four APIs we use."""

from __future__ import annotations

import httpx

from vendgate.protocol import Clock

from ._epayment import EPaymentApi
from ._http import VippsHttp
from ._qr import QrApi
from ._receipts import OrderManagementApi
from ._retry import RetryPolicy
from ._settings import VippsSettings
from ._webhooks_api import WebhooksApi


class VippsClient:
    """Talks to Vipps (or the simulator) for one merchant.

    The ``httpx.AsyncClient`` is the transport seam: the default transport in production,
    ``httpx.ASGITransport(app=simulator)`` or a ``MockTransport`` in tests. The client does not
    own it and never closes it. ``clock`` (default ``SystemClock()``) drives token expiry and
    reads ``Retry-After`` dates; ``retry`` (with its ``sleep``) drives backoff, so tests need
    not wait.
    """

    def __init__(
        self,
        settings: VippsSettings,
        http: httpx.AsyncClient,
        *,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.http = VippsHttp(settings, http, clock=clock, retry=retry)
        self.epayment = EPaymentApi(self.http)
        self.webhooks = WebhooksApi(self.http)
        self.qr = QrApi(self.http)
        self.order_management = OrderManagementApi(self.http)

    async def access_token(self) -> str:
        """The current token (fetched if needed); mostly useful to check credentials early."""
        return await self.http.tokens.get()
