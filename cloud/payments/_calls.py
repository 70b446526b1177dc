"""The Vipps calls of a vend session, each with its idempotency key derived from the session."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from vendgate.cloud.db import Payment as PaymentRow
from vendgate.cloud.db import VendSession
from vendgate.cloud.settings import CloudSettings
from vendgate.cloud.vends import ReceiptLine, idempotency_key
from vendgate.cloud.vipps import (
    Amount,
    BottomLine,
    CreatePaymentRequest,
    Customer,
    OrderLine,
    Payment,
    PaymentMethod,
    Receipt,
    VippsClient,
    VippsConflict,
)

log = logging.getLogger(__name__)

FINAL_FAILURES = frozenset({"ABORTED", "EXPIRED", "TERMINATED"})


def create_request(
    vend: VendSession, payment: PaymentRow, settings: CloudSettings
) -> CreatePaymentRequest:
    """Redirect mode: the phone's browser goes to Vipps and back to the status page.
    Callback mode: Vipps pushes the request to the app of the customer who checked in."""
    common = {
        "amount": Amount(payment.amount, payment.currency),
        "reference": payment.reference,
        "payment_method": PaymentMethod(type="WALLET"),
        "customer_interaction": "CUSTOMER_PRESENT",
        "payment_description": settings.payment_description,
    }
    if payment.customer_token is not None:
        return CreatePaymentRequest(
            **common,  # type: ignore[arg-type]
            user_flow="PUSH_MESSAGE",
            customer=Customer(customer_token=payment.customer_token),
        )
    return CreatePaymentRequest(
        **common,  # type: ignore[arg-type]
        user_flow="WEB_REDIRECT",
        return_url=settings.status_url(vend.status_token),
    )


async def create_payment(
    vipps: VippsClient, vend: VendSession, payment: PaymentRow, settings: CloudSettings
) -> str | None:
    """Create (or, after a crash, re-create with the same key) the payment; its redirect URL."""
    request = create_request(vend, payment, settings)
    try:
        created = await vipps.epayment.create_payment(
            request, idempotency_key=idempotency_key(vend.id, "create")
        )
    except VippsConflict:
        # The reference exists already: an earlier attempt of ours got through.
        log.info("vend %s: payment exists already, reading it back", vend.id)
        return (await vipps.epayment.get_payment(payment.reference)).redirect_url
    return created.redirect_url


async def fetch(vipps: VippsClient, reference: str) -> Payment:
    return await vipps.epayment.get_payment(reference)


async def capture(vipps: VippsClient, vend: VendSession) -> None:
    amount = Amount(vend.capture_amount or 0, vend.currency)
    await vipps.epayment.capture(
        vend.id, amount, idempotency_key=idempotency_key(vend.id, "capture")
    )


async def cancel(vipps: VippsClient, vend: VendSession) -> None:
    await vipps.epayment.cancel(vend.id, idempotency_key=idempotency_key(vend.id, "cancel"))


def receipt(lines: Sequence[ReceiptLine], currency: str) -> Receipt:
    return Receipt(
        order_lines=[
            OrderLine(
                name=line.name,
                id=str(line.item),
                total_amount=line.total,
                total_amount_excluding_tax=line.excluding_tax,
                total_tax_amount=line.tax,
                tax_rate=line.vat_rate,
            )
            for line in lines
        ],
        bottom_line=BottomLine(currency=currency),
    )


async def post_receipt(vipps: VippsClient, vend: VendSession, lines: Sequence[ReceiptLine]) -> None:
    """Post it once; a 409 means an earlier attempt of ours posted it already."""
    try:
        await vipps.order_management.post_receipt(vend.id, receipt(lines, vend.currency))
    except VippsConflict:
        log.info("vend %s: receipt was posted already", vend.id)
