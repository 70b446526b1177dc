"""ePayment API v1: create, read, capture, cancel, refund, and the test-only force approve."""

from __future__ import annotations

import re

import msgspec

from ._errors import VippsRequestInvalid
from ._http import VippsHttp, decode
from ._schemas import (
    Amount,
    CancelRequest,
    CreatePaymentRequest,
    CreatePaymentResponse,
    Customer,
    ForceApproveRequest,
    ModificationRequest,
    ModificationResponse,
    Payment,
    PaymentEvent,
)

# v1.8.1 allows 64 characters, v1.4.1 allowed 50; 50 satisfies both.
REFERENCE_PATTERN = re.compile(r"^[a-zA-Z0-9-]{8,50}$")
PAYMENTS = "/epayment/v1/payments"


def check_reference(reference: str) -> str:
    if not REFERENCE_PATTERN.fullmatch(reference):
        pattern = REFERENCE_PATTERN.pattern
        raise VippsRequestInvalid(f"reference must match {pattern}: {reference!r}")
    return reference


def check_customer(customer: Customer) -> None:
    given = [v for v in (customer.phone_number, customer.personal_qr, customer.customer_token) if v]
    if len(given) != 1:
        raise VippsRequestInvalid("customer takes exactly one of phone_number, personal_qr, token")


def check_create(request: CreatePaymentRequest) -> None:
    check_reference(request.reference)
    if request.user_flow == "WEB_REDIRECT" and not request.return_url:
        raise VippsRequestInvalid("userFlow WEB_REDIRECT needs a returnUrl")
    if request.customer is not None:
        check_customer(request.customer)
    description = request.payment_description
    if description is not None and not 3 <= len(description) <= 100:
        raise VippsRequestInvalid("paymentDescription must be 3-100 characters")


class EPaymentApi:
    def __init__(self, http: VippsHttp) -> None:
        self._http = http

    async def create_payment(
        self, request: CreatePaymentRequest, *, idempotency_key: str
    ) -> CreatePaymentResponse:
        check_create(request)
        response = await self._http.call(
            "POST", PAYMENTS, body=request, idempotency_key=idempotency_key
        )
        return decode(response, CreatePaymentResponse)

    async def get_payment(self, reference: str) -> Payment:
        response = await self._http.call("GET", f"{PAYMENTS}/{check_reference(reference)}")
        return decode(response, Payment)

    async def get_events(self, reference: str) -> list[PaymentEvent]:
        path = f"{PAYMENTS}/{check_reference(reference)}/events"
        return decode(await self._http.call("GET", path), list[PaymentEvent])

    async def capture(
        self, reference: str, amount: Amount, *, idempotency_key: str
    ) -> ModificationResponse:
        return await self._modify(
            reference, "capture", ModificationRequest(modification_amount=amount), idempotency_key
        )

    async def refund(
        self, reference: str, amount: Amount, *, idempotency_key: str
    ) -> ModificationResponse:
        return await self._modify(
            reference, "refund", ModificationRequest(modification_amount=amount), idempotency_key
        )

    async def cancel(
        self, reference: str, *, idempotency_key: str, cancel_transaction_only: bool = False
    ) -> ModificationResponse:
        """Cancel: before authorization it terminates the payment, after it releases the rest.

        ``cancel_transaction_only=True`` refuses (error 6060) if the payment is already
        authorized: use it to give up on an unapproved payment without racing the customer.
        """
        body = CancelRequest(cancel_transaction_only=True if cancel_transaction_only else None)
        return await self._modify(reference, "cancel", body, idempotency_key)

    async def _modify(
        self, reference: str, operation: str, body: msgspec.Struct, idempotency_key: str
    ) -> ModificationResponse:
        path = f"{PAYMENTS}/{check_reference(reference)}/{operation}"
        response = await self._http.call("POST", path, body=body, idempotency_key=idempotency_key)
        return decode(response, ModificationResponse)

    async def force_approve(
        self, reference: str, *, customer: Customer | None = None, token: str | None = None
    ) -> None:
        """Test environment only: approve as if the customer did it in the app."""
        if customer is not None:
            check_customer(customer)
        path = f"/epayment/v1/test/payments/{check_reference(reference)}/approve"
        body = ForceApproveRequest(customer=customer, token=token)
        await self._http.call("POST", path, body=body)
