"""Carries out the core's Vipps calls and turns each answer into the core's next input.

Every call of a session carries the idempotency key the core derived (``{vend}-{operation}``),
so a repeat after a crash or a timeout is the same call. No transaction is open here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from vendgate.cloud.settings import CloudSettings
from vendgate.cloud.vipps import (
    Amount,
    BottomLine,
    CreatePaymentRequest,
    Customer,
    OrderLine,
    Payment,
    PaymentMethod,
    Receipt,
    VippsApiError,
    VippsClient,
    VippsConflict,
    VippsError,
)
from vendgate.protocol import Money

from ._core import (
    CallVipps,
    Input,
    PaymentCreated,
    PaymentFacts,
    PaymentRead,
    PaymentRefused,
    Snapshot,
    StepDone,
    StepFailed,
    VerifyRead,
    VippsOp,
)
from ._settlement import ReceiptLine

log = logging.getLogger(__name__)


def create_request(snapshot: Snapshot, settings: CloudSettings) -> CreatePaymentRequest:
    """Redirect mode: the phone's browser goes to Vipps and back to the status page.
    Callback mode: Vipps pushes the request to the app of the customer who checked in."""
    common = {
        "amount": Amount(snapshot.reserved, snapshot.currency),
        "reference": snapshot.id,
        "payment_method": PaymentMethod(type="WALLET"),
        "customer_interaction": "CUSTOMER_PRESENT",
        "payment_description": settings.payment_description,
    }
    if snapshot.customer_token is not None:
        return CreatePaymentRequest(
            **common,  # type: ignore[arg-type]
            user_flow="PUSH_MESSAGE",
            customer=Customer(customer_token=snapshot.customer_token),
        )
    return CreatePaymentRequest(
        **common,  # type: ignore[arg-type]
        user_flow="WEB_REDIRECT",
        return_url=settings.status_url(snapshot.status_token),
    )


def facts_of(payment: Payment) -> PaymentFacts:
    aggregate = payment.aggregate

    def money(amount: Amount) -> Money:
        return Money(amount.value, amount.currency)

    return PaymentFacts(
        state=payment.state,
        authorized=money(aggregate.authorized_amount),
        captured=money(aggregate.captured_amount),
        cancelled=money(aggregate.cancelled_amount),
    )


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


class VippsExecutor:
    """``vipps`` for the background; ``scan_vipps`` (one attempt per call) for the scan's
    create, which gives up after ``scan_timeout`` seconds and leaves it to the reconciler."""

    def __init__(
        self,
        vipps: VippsClient,
        settings: CloudSettings,
        *,
        scan_vipps: VippsClient | None = None,
    ) -> None:
        self.vipps = vipps
        self.scan_vipps = scan_vipps or vipps
        self.settings = settings

    async def execute(self, snapshot: Snapshot, call: CallVipps, *, scan: bool = False) -> Input:
        try:
            if call.operation is VippsOp.CREATE and scan:
                timeout = self.settings.timing.scan_vipps_timeout
                try:
                    async with asyncio.timeout(timeout):
                        return await self._create(self.scan_vipps, snapshot, call)
                except TimeoutError:
                    return StepFailed(call.operation, f"no answer within {timeout:g} s")
            return await self._call(snapshot, call)
        except VippsApiError as exc:
            if call.operation is VippsOp.CREATE and not exc.retryable:
                return PaymentRefused(str(exc))
            return StepFailed(call.operation, str(exc), exc.status)
        except VippsError as exc:
            return StepFailed(call.operation, str(exc))

    async def _call(self, snapshot: Snapshot, call: CallVipps) -> Input:
        epayment, reference = self.vipps.epayment, snapshot.id
        key = call.idempotency_key or ""
        match call.operation:
            case VippsOp.CREATE:
                return await self._create(self.vipps, snapshot, call)
            case VippsOp.POLL:
                facts = facts_of(await epayment.get_payment(reference))
                return PaymentRead(facts, snapshot.payment_hints)
            case VippsOp.VERIFY:
                return VerifyRead(facts_of(await epayment.get_payment(reference)))
            case VippsOp.CAPTURE:
                money = call.amount or Money.zero(snapshot.currency)
                amount = Amount(money.value, money.currency)
                await epayment.capture(reference, amount, idempotency_key=key)
            case VippsOp.CANCEL:
                await epayment.cancel(reference, idempotency_key=key)
            case VippsOp.RECEIPT:
                await self._post_receipt(snapshot, call.receipt)
        return StepDone(call.operation)

    async def _create(self, vipps: VippsClient, snapshot: Snapshot, call: CallVipps) -> Input:
        """Create (or, after a crash, re-create with the same key) the payment."""
        request = create_request(snapshot, self.settings)
        try:
            created = await vipps.epayment.create_payment(
                request, idempotency_key=call.idempotency_key or ""
            )
        except VippsConflict:
            # The reference exists already: an earlier attempt of ours got through.
            log.info("vend %s: payment exists already, reading it back", snapshot.id)
            return PaymentCreated((await vipps.epayment.get_payment(snapshot.id)).redirect_url)
        return PaymentCreated(created.redirect_url)

    async def _post_receipt(self, snapshot: Snapshot, lines: Sequence[ReceiptLine]) -> None:
        """Post it once; a 409 means an earlier attempt of ours posted it already."""
        try:
            await self.vipps.order_management.post_receipt(
                snapshot.id, receipt(lines, snapshot.currency)
            )
        except VippsConflict:
            log.info("vend %s: receipt was posted already", snapshot.id)
