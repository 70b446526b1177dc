"""The ePayment service of the simulator: validation, idempotency, ledger, events out."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import msgspec

from vendgate.cloud.vipps import (
    Aggregate,
    Amount,
    CancelRequest,
    CreatePaymentRequest,
    CreatePaymentResponse,
    ForceApproveRequest,
    ModificationRequest,
    ModificationResponse,
    Payment,
    PaymentEvent,
    PaymentMethodResponse,
    ProfileResponse,
    WebhookEvent,
)
from vendgate.protocol import Clock

from . import _ledger as ledger
from ._idempotency import IdempotencyStore
from ._problems import SimProblem, Style, bad_request, not_found

REFERENCE = re.compile(r"^[a-zA-Z0-9-]{8,64}$")
CURRENCIES = {"NOK": 100, "DKK": 1, "EUR": 1}  # minimum amount in minor units (ePayment Amount)
MAX_AMOUNT = 65_000_000

EventSink = Callable[[WebhookEvent], None]
T = TypeVar("T")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(body: bytes) -> bytes:
    """The request body in a canonical form, so key-replay compares meaning, not whitespace."""
    if not body.strip():
        return b""
    return msgspec.json.encode(msgspec.json.decode(body), order="sorted")


# Fields the specs type as strings that the real API also takes as JSON numbers: Vipps' own
# Postman collection sends `"reference": {{reference}}` and `"phoneNumber": {{...}}` unquoted.
NUMBERS_AS_STRINGS = (("reference",), ("customer", "phoneNumber"))


def decode_body(
    body: bytes,
    type_: type[T],
    style: Style = "problem",
    *,
    numbers_as_strings: tuple[tuple[str, ...], ...] = (),
) -> T:
    try:
        if not numbers_as_strings:
            return msgspec.json.decode(body, type=type_)
        document = msgspec.json.decode(body)
        for path in numbers_as_strings:
            _integer_to_string(document, path)
        return msgspec.convert(document, type_)
    except msgspec.ValidationError as exc:
        raise bad_request(str(exc), field_name=_path_of(str(exc)), style=style) from exc
    except msgspec.DecodeError as exc:
        raise bad_request(f"malformed JSON: {exc}", style=style) from exc


def _integer_to_string(document: object, path: tuple[str, ...]) -> None:
    """Replace the integer at ``path`` (keys into nested objects) by its decimal string."""
    *parents, name = path
    for key in parents:
        document = document.get(key) if isinstance(document, dict) else None
    if isinstance(document, dict):
        value = document.get(name)
        if isinstance(value, int) and not isinstance(value, bool):  # JSON true is no number
            document[name] = str(value)


def _path_of(message: str) -> str | None:
    """The field a msgspec error is about: ``$.a.b``, or a missing field's name under it."""
    at = re.search(r"at `\$\.?([^`]*)`", message)
    missing = re.search(r"missing required field `([^`]*)`", message)
    path = [part for part in (at.group(1) if at else None, missing and missing.group(1)) if part]
    return ".".join(path) or None


@dataclass
class SimPayment:
    ledger: ledger.LedgerPayment
    request: CreatePaymentRequest
    token: str
    redirect_url: str | None


class PaymentService:
    def __init__(
        self, msn: str, clock: Clock, expiry: Callable[[], float], sink: EventSink
    ) -> None:
        self._msn = msn
        self._clock = clock
        self._expiry = expiry
        self._sink = sink
        self._payments: dict[str, SimPayment] = {}
        self._by_token: dict[str, str] = {}
        self._idempotency = IdempotencyStore()
        self._psp_counter = 3_343_121_300

    # -- helpers -----------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _psp(self) -> str:
        self._psp_counter += 1
        return str(self._psp_counter)

    def _emit(self, payment: SimPayment, event: ledger.LedgerEvent) -> None:
        self._sink(
            WebhookEvent(
                msn=self._msn,
                reference=payment.ledger.reference,
                psp_reference=event.psp_reference,
                name=event.name,
                amount=Amount(event.amount, payment.ledger.currency),
                timestamp=iso(event.timestamp),
                success=event.success,
                idempotency_key=event.idempotency_key,
            )
        )

    def tick(self) -> None:
        """Expire every CREATED payment whose customer ran out of time."""
        now = self._now()
        for payment in self._payments.values():
            event = ledger.expire_if_due(payment.ledger, now, self._psp)
            if event is not None:
                self._emit(payment, event)

    def find(self, reference: str) -> SimPayment:
        self.tick()
        payment = self._payments.get(reference)
        if payment is None:
            raise not_found(f"no payment with reference {reference}")
        return payment

    def all(self) -> list[SimPayment]:
        """Every payment created so far, oldest first."""
        self.tick()
        return list(self._payments.values())

    def by_token(self, token: str) -> SimPayment:
        reference = self._by_token.get(token)
        if reference is None:
            raise not_found("unknown or stale payment token")
        return self.find(reference)

    # -- create, read --------------------------------------------------------------------------

    def create(self, body: bytes, key: str | None, base_url: str) -> CreatePaymentResponse:
        request = decode_body(body, CreatePaymentRequest, numbers_as_strings=NUMBERS_AS_STRINGS)
        _validate_create(request)
        checked_key = _required_key(key)
        return self._idempotency.run(
            checked_key,
            "create",
            request.reference,
            fingerprint(body),
            "4020",
            lambda: self._open(request, checked_key, base_url),
        )

    def _open(
        self, request: CreatePaymentRequest, key: str, base_url: str
    ) -> CreatePaymentResponse:
        if request.reference in self._payments:
            detail = f"Reference {request.reference} already exists"
            raise SimProblem(409, "Conflict", detail, code="4150")
        now = self._now()
        amount = request.amount
        expiry, psp = self._expiry(), self._psp()
        record = ledger.open_payment(
            request.reference, amount.value, amount.currency, now, expiry, psp, key
        )
        token = secrets.token_urlsafe(24)
        # A push message goes to the phone directly; every other flow hands out a link.
        redirect = None
        if request.user_flow != "PUSH_MESSAGE":
            redirect = f"{base_url}/sim/landing?token={token}"
        payment = SimPayment(record, request, token, redirect)
        self._payments[request.reference] = payment
        self._by_token[token] = request.reference
        self._emit(payment, record.events[-1])
        return CreatePaymentResponse(reference=request.reference, redirect_url=redirect)

    def get(self, reference: str) -> Payment:
        payment = self.find(reference)
        record = payment.ledger
        return Payment(
            aggregate=_aggregate(record),
            amount=Amount(record.amount, record.currency),
            state=record.state,
            payment_method=PaymentMethodResponse(type=payment.request.payment_method.type),
            profile=ProfileResponse(),
            psp_reference=record.psp_reference,
            reference=record.reference,
            redirect_url=payment.redirect_url,
            metadata=payment.request.metadata,
        )

    def events(self, reference: str) -> list[PaymentEvent]:
        record = self.find(reference).ledger
        return [
            PaymentEvent(
                reference=record.reference,
                psp_reference=e.psp_reference,
                name=e.name,
                amount=Amount(e.amount, record.currency),
                timestamp=iso(e.timestamp),
                success=e.success,
                idempotency_key=e.idempotency_key,
            )
            for e in record.events
        ]

    # -- money movements -----------------------------------------------------------------------

    def capture(self, reference: str, body: bytes, key: str | None) -> ModificationResponse:
        amount = decode_body(body, ModificationRequest).modification_amount

        def apply(payment: ledger.LedgerPayment, key: str) -> ledger.LedgerEvent:
            value = self._value(payment, amount)
            return ledger.capture(payment, value, self._now(), self._psp, key)

        return self._modify(reference, "capture", body, _required_key(key), "4010", apply)

    def refund(self, reference: str, body: bytes, key: str | None) -> ModificationResponse:
        amount = decode_body(body, ModificationRequest).modification_amount

        def apply(payment: ledger.LedgerPayment, key: str) -> ledger.LedgerEvent:
            value = self._value(payment, amount)
            return ledger.refund(payment, value, self._now(), self._psp, key)

        return self._modify(reference, "refund", body, _required_key(key), "4150", apply)

    def cancel(self, reference: str, body: bytes, key: str | None) -> ModificationResponse:
        request = decode_body(body, CancelRequest) if body.strip() else CancelRequest()
        only = bool(request.cancel_transaction_only)

        def apply(payment: ledger.LedgerPayment, key: str) -> ledger.LedgerEvent:
            return ledger.cancel(payment, only, self._now(), self._psp, key)

        # Cancel takes an optional key in v1.8.1; without one every call is a new attempt.
        key = key or f"sim-cancel-{secrets.token_hex(8)}"
        return self._modify(reference, "cancel", body, key, "4020", apply)

    def _value(self, payment: ledger.LedgerPayment, amount: Amount) -> int:
        if amount.currency != payment.currency:
            raise SimProblem(
                400, "Bad Request", f"currency must be {payment.currency}", code="5040"
            )
        return amount.value

    def _modify(
        self,
        reference: str,
        operation: str,
        body: bytes,
        key: str,
        conflict_code: str,
        apply: Callable[[ledger.LedgerPayment, str], ledger.LedgerEvent],
    ) -> ModificationResponse:
        payment = self.find(reference)

        def run() -> ModificationResponse:
            try:
                event = apply(payment.ledger, key)
            except ledger.RuleViolation as rule:
                raise SimProblem(rule.status, rule.title, rule.detail, code=rule.code) from rule
            self._emit(payment, event)
            return _modification(payment.ledger)

        return self._idempotency.run(
            key, operation, reference, fingerprint(body), conflict_code, run
        )

    # -- the customer's side -------------------------------------------------------------------

    def approve(self, payment: SimPayment) -> None:
        self._customer_acts(payment, ledger.authorize)

    def reject(self, payment: SimPayment) -> None:
        self._customer_acts(payment, ledger.abort)

    def _customer_acts(
        self,
        payment: SimPayment,
        act: Callable[[ledger.LedgerPayment, float, ledger.NewPspReference], ledger.LedgerEvent],
    ) -> None:
        self.tick()
        try:
            event = act(payment.ledger, self._now(), self._psp)
        except ledger.RuleViolation as rule:
            raise SimProblem(rule.status, rule.title, rule.detail, code=rule.code) from rule
        self._emit(payment, event)

    def force_approve(self, reference: str, body: bytes) -> None:
        payment = self.find(reference)
        request = (
            decode_body(body, ForceApproveRequest, numbers_as_strings=NUMBERS_AS_STRINGS)
            if body.strip()
            else ForceApproveRequest()
        )
        if request.token is not None and request.token != payment.token:
            raise bad_request("token does not belong to this payment", field_name="token")
        self.approve(payment)


def _required_key(key: str | None) -> str:
    if not key:
        raise bad_request("Idempotency-Key header is required", field_name="Idempotency-Key")
    if len(key) > 50:
        raise bad_request(
            "Idempotency-Key is longer than 50 characters", field_name="Idempotency-Key"
        )
    return key


def _validate_create(request: CreatePaymentRequest) -> None:
    if not REFERENCE.fullmatch(request.reference):
        raise bad_request(f"reference must match {REFERENCE.pattern}", field_name="reference")
    minimum = CURRENCIES.get(request.amount.currency)
    if minimum is None:
        raise SimProblem(
            400, "Bad Request", "currency not supported for this merchant", code="5040"
        )
    if not minimum <= request.amount.value <= MAX_AMOUNT:
        raise SimProblem(400, "Bad Request", f"amount must be {minimum}..{MAX_AMOUNT}", code="4040")
    if request.user_flow == "WEB_REDIRECT" and not request.return_url:
        raise SimProblem(400, "Bad Request", "returnUrl is required for WEB_REDIRECT", code="4140")
    if request.user_flow == "PUSH_MESSAGE" and request.customer is None:
        raise SimProblem(400, "Bad Request", "customer is required for PUSH_MESSAGE", code="4140")
    if request.customer is not None:
        c = request.customer
        if sum(v is not None for v in (c.phone_number, c.personal_qr, c.customer_token)) != 1:
            raise bad_request("customer takes exactly one identifier", field_name="customer")
    description = request.payment_description
    if description is not None and not 3 <= len(description) <= 100:
        raise bad_request(
            "paymentDescription must be 3-100 characters", field_name="paymentDescription"
        )


def _amount(value: int, currency: str) -> Amount:
    return Amount(value, currency)


def _aggregate(record: ledger.LedgerPayment) -> Aggregate:
    c = record.currency
    return Aggregate(
        authorized_amount=_amount(record.authorized, c),
        cancelled_amount=_amount(record.cancelled, c),
        captured_amount=_amount(record.captured, c),
        refunded_amount=_amount(record.refunded, c),
    )


def _modification(record: ledger.LedgerPayment) -> ModificationResponse:
    return ModificationResponse(
        amount=_amount(record.amount, record.currency),
        state=record.state,
        aggregate=_aggregate(record),
        psp_reference=record.psp_reference,
        reference=record.reference,
    )
