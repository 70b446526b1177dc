"""The payment state machine and aggregate arithmetic, with no I/O.

States (ePayment ``State``): CREATED → AUTHORIZED | ABORTED | EXPIRED | TERMINATED; all but
CREATED are final. Capture, cancel and refund leave an AUTHORIZED payment AUTHORIZED and move
only the aggregate. Each successful operation appends one event to the payment's log.
Rule violations raise :class:`RuleViolation` carrying the Vipps status and error code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

State = Literal["CREATED", "AUTHORIZED", "ABORTED", "EXPIRED", "TERMINATED"]
EventName = Literal[
    "CREATED", "ABORTED", "EXPIRED", "CANCELLED", "CAPTURED", "REFUNDED", "AUTHORIZED", "TERMINATED"
]
NewPspReference = Callable[[], str]


class RuleViolation(Exception):
    """An operation the payment's state or aggregate does not allow."""

    def __init__(self, status: int, code: str | None, title: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class LedgerEvent:
    name: EventName
    amount: int
    psp_reference: str
    timestamp: float
    idempotency_key: str | None = None
    success: bool = True


@dataclass
class LedgerPayment:
    reference: str
    amount: int
    currency: str
    psp_reference: str
    created_at: float
    expires_at: float
    state: State = "CREATED"
    authorized: int = 0
    captured: int = 0
    cancelled: int = 0
    refunded: int = 0
    events: list[LedgerEvent] = field(default_factory=list)

    @property
    def capturable(self) -> int:
        """What is still reserved: neither captured nor released."""
        return self.authorized - self.captured - self.cancelled

    def record(self, event: LedgerEvent) -> LedgerEvent:
        self.events.append(event)
        return event


def open_payment(
    reference: str, amount: int, currency: str, now: float, expiry: float, psp: str, key: str
) -> LedgerPayment:
    payment = LedgerPayment(reference, amount, currency, psp, now, now + expiry)
    payment.record(LedgerEvent("CREATED", amount, psp, now, key))
    return payment


def _require_created(payment: LedgerPayment, action: str) -> None:
    if payment.state != "CREATED":
        raise RuleViolation(
            400,
            None,
            "Payment not in a state that allows this",
            f"cannot {action} a payment in state {payment.state}",
        )


def authorize(payment: LedgerPayment, now: float, psp: NewPspReference) -> LedgerEvent:
    """The customer approved in the app: the full amount is reserved."""
    _require_created(payment, "approve")
    payment.state = "AUTHORIZED"
    payment.authorized = payment.amount
    return payment.record(LedgerEvent("AUTHORIZED", payment.amount, psp(), now))


def abort(payment: LedgerPayment, now: float, psp: NewPspReference) -> LedgerEvent:
    """The customer rejected in the app."""
    _require_created(payment, "reject")
    payment.state = "ABORTED"
    return payment.record(LedgerEvent("ABORTED", payment.amount, psp(), now))


def expire_if_due(payment: LedgerPayment, now: float, psp: NewPspReference) -> LedgerEvent | None:
    if payment.state != "CREATED" or now < payment.expires_at:
        return None
    payment.state = "EXPIRED"
    return payment.record(LedgerEvent("EXPIRED", payment.amount, psp(), payment.expires_at))


def capture(
    payment: LedgerPayment, value: int, now: float, psp: NewPspReference, key: str
) -> LedgerEvent:
    if payment.state != "AUTHORIZED":
        raise RuleViolation(
            400,
            "6080",
            "Capture before reservation",
            f"the payment is {payment.state}, not AUTHORIZED",
        )
    if payment.cancelled:
        raise RuleViolation(
            400,
            "6070",
            "Cannot capture a cancelled payment",
            "the remaining reservation was cancelled",
        )
    if value <= 0:
        raise RuleViolation(400, "4040", "Invalid amount", "capture amount must be positive")
    if value > payment.capturable:
        raise RuleViolation(
            400,
            "6090",
            "Capture amount too high",
            f"capture {value} exceeds the remaining {payment.capturable}",
        )
    payment.captured += value
    return payment.record(LedgerEvent("CAPTURED", value, psp(), now, key))


def cancel(
    payment: LedgerPayment,
    transaction_only: bool,
    now: float,
    psp: NewPspReference,
    key: str | None,
) -> LedgerEvent:
    """Before authorization: terminate. After: release the whole remainder, irreversibly."""
    if payment.state == "CREATED":
        payment.state = "TERMINATED"
        return payment.record(LedgerEvent("TERMINATED", payment.amount, psp(), now, key))
    if payment.state != "AUTHORIZED":
        raise RuleViolation(
            400, "6050", "Cannot cancel a non-reserved payment", f"the payment is {payment.state}"
        )
    if transaction_only:
        raise RuleViolation(
            400,
            "6060",
            "Cannot cancel authorized payment",
            "cancelTransactionOnly is set and the payment is authorized",
        )
    if payment.cancelled:
        raise RuleViolation(400, "6190", "Cannot cancel", "the payment is already cancelled")
    if payment.capturable == 0:
        raise RuleViolation(
            400,
            "6040",
            "Cannot cancel a captured payment",
            "the full amount is captured; refund instead",
        )
    released = payment.capturable
    payment.cancelled += released
    return payment.record(LedgerEvent("CANCELLED", released, psp(), now, key))


def refund(
    payment: LedgerPayment, value: int, now: float, psp: NewPspReference, key: str
) -> LedgerEvent:
    if payment.state != "AUTHORIZED":
        raise RuleViolation(400, None, "Cannot refund", f"the payment is {payment.state}")
    if value <= 0:
        raise RuleViolation(400, "4040", "Invalid amount", "refund amount must be positive")
    refundable = payment.captured - payment.refunded
    if value > refundable:
        raise RuleViolation(
            400,
            None,
            "Refund amount too high",
            f"refund {value} exceeds the captured, unrefunded {refundable}",
        )
    payment.refunded += value
    return payment.record(LedgerEvent("REFUNDED", value, psp(), now, key))
