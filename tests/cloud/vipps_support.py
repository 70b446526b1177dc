"""Helpers shared by the Vipps tests: where the clock starts, an in-memory webhook endpoint, a
payment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import msgspec

from vendgate.cloud.vipps import Amount, CreatePaymentRequest, PaymentMethod

SIM_BASE_URL = "https://apitest.vipps.no"  # the client cannot tell the simulator from Vipps


# Where the tests' ManualClock starts: a fixed instant, so signed dates repeat from run to run.
CLOCK_START = datetime.fromtimestamp(1_780_000_000, UTC)


class WebhookReceiver:
    """A merchant webhook endpoint in memory; answers with the statuses it is told to."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []  # answers for the next calls; 200 when empty
        self.on_request: Callable[[httpx.Request], None] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    def names(self) -> list[str]:
        return [msgspec.json.decode(r.content)["name"] for r in self.requests]


def vend_payment(reference: str, value: int = 5000) -> CreatePaymentRequest:
    """A payment the way the cloud creates one for a vend session."""
    return CreatePaymentRequest(
        amount=Amount(value, "NOK"),
        reference=reference,
        user_flow="WEB_REDIRECT",
        payment_method=PaymentMethod(type="WALLET"),
        customer_interaction="CUSTOMER_PRESENT",
        return_url=f"https://pay.example.com/status/{reference}",
        payment_description="Vending machine purchase",
    )
