"""The vend session's core, pure: ``decide(snapshot, input, now, timing) -> Decision``.

Every fact about a session (the payment created or refused, read back, a machine's event,
time passing, a Vipps step done or failed) is an input; the decision is the next snapshot and
the effects that follow from it: call Vipps, send a command to the machine, log a step, raise
an alert. No I/O, no clock, no database: ``VendService`` reads the snapshot, writes the
decision in one transaction, and only then carries out the Vipps calls, whose results come
back as inputs. The rules are those of ``_states`` (legal moves), ``_schedule`` (what is due
when) and ``_settlement`` (what to capture, cancel, and charge).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

from vendgate.cloud.alerts.kinds import AlertKind
from vendgate.protocol import Money

from ._schedule import ABANDONED, Action, approval_deadline, due_at, next_action
from ._settlement import Line, Pricing, ReceiptLine, decide_settlement, receipt_lines
from ._states import VendInput, VendState, next_state

if TYPE_CHECKING:
    from vendgate.cloud.settings import TimingSettings

# A failed step waits retry_delay, doubled per failure of the session, at most this many times.
MAX_BACKOFF_FACTOR = 64
# Vipps states in which a payment ends without money reserved.
FINAL_FAILURES = frozenset({"ABORTED", "EXPIRED", "TERMINATED"})


def idempotency_key(vend_id: str, operation: str) -> str:
    """The Idempotency-Key of one Vipps operation of a session (at most 50 characters)."""
    key = f"{vend_id}-{operation}"
    assert len(key) <= 50, key
    return key


def command_id(vend_id: str, kind: str) -> str:
    """A session sends each command once (and re-sends it with this same id)."""
    return f"{vend_id}-{kind}"


# -- the snapshot ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """A session, its payment, its reported lines and its machine's prices, as read."""

    id: str
    machine_id: str
    currency: str
    state: VendState
    reserved: int  # what the payment asks for: the machine's highest price
    created_at: datetime
    updated_at: datetime
    pricing: Pricing
    # item -> (name, VAT rate) from the planogram, and the machine's VAT rate: the receipt.
    names: Mapping[int, tuple[str, int]] = field(default_factory=dict)
    machine_vat: int = 0
    status_token: str = ""
    customer_token: str | None = None
    due_at: datetime | None = None
    lease_until: datetime | None = None
    authorized_amount: int = 0
    authorized_at: datetime | None = None
    command_id: str | None = None
    command_sent_at: datetime | None = None
    command_expires_at: datetime | None = None
    settle_by: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    closed_at: datetime | None = None
    end_reason: str | None = None
    capture_amount: int | None = None
    cancel_amount: int | None = None
    captured_at: datetime | None = None
    cancelled_at: datetime | None = None
    verified_at: datetime | None = None
    receipt_at: datetime | None = None
    outcome: str | None = None
    failures: int = 0
    last_error: str | None = None
    # The payment as Vipps last told us.
    payment_state: str | None = None
    redirect_url: str | None = None
    payment_authorized: int = 0
    payment_captured: int = 0
    payment_cancelled: int = 0
    next_poll_at: datetime | None = None
    payment_hints: int = 0
    payment_updated_at: datetime | None = None
    # Attempts reported so far, as charged; and price_mismatch details already alerted.
    lines: tuple[Line, ...] = ()
    alerted_mismatches: tuple[str, ...] = ()


# -- inputs ----------------------------------------------------------------------------------


class VippsOp(StrEnum):
    CREATE = "create"
    POLL = "poll"
    CAPTURE = "capture"
    CANCEL = "cancel"
    VERIFY = "verify"
    RECEIPT = "receipt"


@dataclass(frozen=True)
class PaymentFacts:
    """A payment as read back from Vipps (``GET /epayment/v1/payments/{reference}``)."""

    state: str
    authorized: Money
    captured: Money
    cancelled: Money


@dataclass(frozen=True)
class TimePassed:
    """A look at the session: whatever is due now (create, poll, resend, deadlines, steps)."""


@dataclass(frozen=True)
class Released:
    """The reconciler's claim on the session ends: schedule the next look."""


@dataclass(frozen=True)
class PaymentCreated:
    redirect_url: str | None


@dataclass(frozen=True)
class PaymentRefused:
    """Vipps refused the create for good (a 4xx that is not worth repeating)."""

    error: str


@dataclass(frozen=True)
class PaymentRead:
    """A poll's answer. A webhook never carries this: it only makes the read due.

    ``hints_when_asked`` is the session's count of webhook hints when the read was made: a
    higher count now means a webhook hinted while the read was under way, and its "look now"
    must stand. (A count, not a time: two instants can be equal, two counts that differ can't.)
    """

    facts: PaymentFacts
    hints_when_asked: int | None = None


@dataclass(frozen=True)
class PaymentHinted:
    """A webhook: a hint that the payment changed, with what it claims."""

    name: str
    value: int  # the amount it names, as sent (not trusted, not validated)
    currency: str


@dataclass(frozen=True)
class EdgeStarted:
    funds: str


@dataclass(frozen=True)
class EdgeDispensed:
    line: Line  # as the machine reported it


@dataclass(frozen=True)
class EdgeRejected:
    reason: str
    duplicate: bool = False  # a re-sent command the edge already has: not a refusal


@dataclass(frozen=True)
class EdgeEnded:
    reason: str
    lines: tuple[Line, ...]  # every attempt, as the machine reported it


@dataclass(frozen=True)
class StepDone:
    """A capture, cancel or receipt went through at Vipps."""

    operation: VippsOp


@dataclass(frozen=True)
class VerifyRead:
    """The payment read back to verify the settlement (None: it never existed at Vipps)."""

    facts: PaymentFacts | None


@dataclass(frozen=True)
class StepFailed:
    operation: VippsOp
    error: str
    status: int | None = None  # Vipps' HTTP status, when it answered


Input: TypeAlias = (
    TimePassed
    | Released
    | PaymentCreated
    | PaymentRefused
    | PaymentRead
    | PaymentHinted
    | EdgeStarted
    | EdgeDispensed
    | EdgeRejected
    | EdgeEnded
    | StepDone
    | VerifyRead
    | StepFailed
)

# -- effects ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallVipps:
    """One Vipps call; its result comes back as an input. Reads carry no key."""

    operation: VippsOp
    idempotency_key: str | None = None
    amount: Money | None = None
    receipt: tuple[ReceiptLine, ...] = ()


class CommandKind(StrEnum):
    AUTHORIZED = "authorized"
    CANCEL = "cancel"


@dataclass(frozen=True)
class SendCommand:
    """A command for the machine, into the outbox in the decision's transaction."""

    kind: CommandKind
    command_id: str
    amount: Money | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ResendCommand:
    command_id: str


@dataclass(frozen=True)
class LogStep:
    step: str
    detail: str = ""


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    detail: str


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Note:
    """A line for the operator's log (not the session's)."""

    level: Level
    text: str


Effect: TypeAlias = CallVipps | SendCommand | ResendCommand | LogStep | Alert | Note


@dataclass(frozen=True)
class Decision:
    snapshot: Snapshot
    effects: tuple[Effect, ...] = ()
    acted: bool = False  # something changed or is to be done (False: nothing due)
    # Whoever made this decision took the session's lease with it, and works it.
    taken: bool = False

    def calls(self) -> list[CallVipps]:
        return [e for e in self.effects if isinstance(e, CallVipps)]


class _Draft:
    """A decision being made: the snapshot so far and the effects in order."""

    def __init__(self, snapshot: Snapshot, now: datetime) -> None:
        self.s = snapshot
        self.now = now
        self.effects: list[Effect] = []

    def set(self, **changes: object) -> None:
        self.s = dataclasses.replace(self.s, **changes)  # type: ignore[arg-type]

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def step(self, step: str, detail: str = "") -> None:
        self.emit(LogStep(step, detail[:500]))

    def alert(self, kind: AlertKind, detail: str) -> None:
        self.emit(Alert(kind, detail[:1000]))

    def move(self, event: VendInput, detail: str = "") -> bool:
        """Apply ``event`` if the state machine allows it; log the step either way."""
        current = self.s.state
        target = next_state(current, event)
        if target is None:
            self.emit(Note(Level.INFO, f"vend {self.s.id}: {event} ignored in state {current}"))
            return False
        self.set(state=target, updated_at=self.now)
        if target is VendState.CLOSED:
            self.set(closed_at=self.now)
        # The vend id is also the Vipps reference: one line ties the machine, the payment and
        # the step together for whoever reads the log.
        suffix = f" ({detail})" if detail else ""
        text = f"vend {self.s.id} machine {self.s.machine_id}: {current} -> {target} on {event}"
        self.emit(Note(Level.INFO, text + suffix))
        self.step(event, detail)
        return True

    def done(self, before: Snapshot) -> Decision:
        acted = bool(self.effects) or self.s != before
        return Decision(self.s, tuple(self.effects), acted)


# -- decide ----------------------------------------------------------------------------------


def decide(snapshot: Snapshot, event: Input, now: datetime, timing: TimingSettings) -> Decision:
    """The next snapshot and the effects of ``event``; an input that means nothing now (a
    duplicate, a late or reordered message) changes nothing."""
    draft = _Draft(snapshot, now)
    rules = _Rules(draft, timing)
    match event:
        case TimePassed():
            rules.look()
        case Released():
            rules.release()
        case PaymentCreated():
            rules.created(event)
        case PaymentRefused():
            rules.refused(event)
        case PaymentRead():
            rules.read(event.facts, event.hints_when_asked)
        case PaymentHinted():
            rules.hinted(event)
        case EdgeStarted():
            if draft.move(VendInput.EDGE_STARTED, event.funds):
                draft.set(started_at=now)
        case EdgeDispensed():
            rules.dispensed(event.line)
        case EdgeRejected():
            rules.rejected(event)
        case EdgeEnded():
            rules.ended(event)
        case StepDone():
            rules.step_done(event.operation)
        case VerifyRead():
            rules.verified(event.facts)
        case StepFailed():
            rules.step_failed(event)
    return draft.done(snapshot)


# A session needs at most capture, cancel, verify, receipt, close in a row; more is a bug.
MAX_LOOKS = 10
# Where a webhook can still make us read the payment: before the approval is known.
_BEFORE_APPROVAL = frozenset({VendState.CREATING, VendState.AWAITING_APPROVAL})


def hint_is_news(state: VendState, payment_state: str | None, name: str) -> bool:
    """Whether a webhook naming ``name`` makes a session in ``state`` read its payment.

    Only a session awaiting approval reads again, and a CREATED it already knows teaches it
    nothing. (An AUTHORIZED webhook's amount is checked in every state: see ``hinted``.)
    """
    if state is not VendState.AWAITING_APPROVAL:
        return False
    return not (name == "CREATED" and payment_state == "CREATED")


def hint_can_matter(state: VendState, name: str) -> bool:
    """Whether a webhook naming ``name`` can change anything for a session last known in
    ``state`` (by this replica, maybe not lately). States only move forward, so a session known
    past approval stays past it; a CREATED is news to none of the states before it."""
    if name == "AUTHORIZED":
        return True  # its amount is checked against the reservation, whatever the state
    return state in _BEFORE_APPROVAL and name != "CREATED"


def claimable(s: Snapshot, now: datetime) -> bool:
    """Due now and nobody works it: whoever decided this may take it (a lease) and work it."""
    due = s.due_at is not None and s.due_at <= now
    return due and (s.lease_until is None or s.lease_until < now)


def advance(
    snapshot: Snapshot, first: Input | None, now: datetime, timing: TimingSettings
) -> Decision:
    """``first`` (a Vipps call's result, or nothing), then look until a Vipps call is due or
    nothing is: the whole decision of one transaction of whoever holds the lease.

    A decision that ends with a call keeps the lease (its result comes back here); one that
    ends with nothing due releases it. So a session's work is one transaction per Vipps call,
    not three (result, look, release).
    """
    parts: list[Decision] = []
    s = snapshot
    if first is not None:
        parts.append(decide(s, first, now, timing))
        s = parts[-1].snapshot
    failed = s.failures > snapshot.failures  # the back-off decides when to look again
    for _ in range(0 if failed else MAX_LOOKS):
        look = decide(s, TimePassed(), now, timing)
        parts.append(look)
        s = look.snapshot
        if look.calls():
            return _merged(snapshot, parts)
        if not look.acted:
            break
    else:
        if not failed:
            note = f"vend {s.id}: still busy after {MAX_LOOKS} looks; looked at again later"
            parts.append(Decision(s, (Note(Level.ERROR, note),), True))
    parts.append(decide(s, Released(), now, timing))
    return _merged(snapshot, parts)


def _merged(before: Snapshot, parts: list[Decision]) -> Decision:
    effects = tuple(effect for part in parts for effect in part.effects)
    after = parts[-1].snapshot if parts else before
    return Decision(after, effects, any(part.acted for part in parts))


class _Rules:
    def __init__(self, draft: _Draft, timing: TimingSettings) -> None:
        self.d = draft
        self.timing = timing

    @property
    def s(self) -> Snapshot:
        return self.d.s

    @property
    def now(self) -> datetime:
        return self.d.now

    def _schedule(self) -> None:
        self.d.set(due_at=due_at(self.s, self.s, self.timing))

    # -- looking: what is due now ------------------------------------------------------------

    def look(self) -> None:
        action = next_action(self.s, self.s, self.now, self.timing)
        if action is None:
            return
        vend_id = self.s.id
        if action is Action.CREATE_PAYMENT:
            self.d.emit(CallVipps(VippsOp.CREATE, idempotency_key(vend_id, "create")))
        elif action is Action.POLL:
            self.d.emit(CallVipps(VippsOp.POLL))
        elif action is Action.RESEND_COMMAND:
            self._resend()
        elif action is Action.GIVE_UP:
            if self.d.move(VendInput.DEADLINE_PASSED, "machine did not report"):
                self._begin_settling(self.s.lines)
                cancel = command_id(vend_id, CommandKind.CANCEL)
                self.d.emit(SendCommand(CommandKind.CANCEL, cancel))
        elif action is Action.ABANDON:
            self._abandon()
        elif action is Action.CAPTURE:
            amount = Money(self.s.capture_amount or 0, self.s.currency)
            key = idempotency_key(vend_id, "capture")
            self.d.emit(CallVipps(VippsOp.CAPTURE, key, amount))
        elif action is Action.CANCEL:
            self.d.emit(CallVipps(VippsOp.CANCEL, idempotency_key(vend_id, "cancel")))
        elif action is Action.VERIFY:
            self.d.emit(CallVipps(VippsOp.VERIFY))
        elif action is Action.RECEIPT:
            self.d.emit(CallVipps(VippsOp.RECEIPT, receipt=self._receipt()))
        elif action is Action.CLOSE and self.d.move(VendInput.SETTLED):
            self.d.set(outcome=_outcome(self.s), due_at=None)

    def release(self) -> None:
        self.d.set(lease_until=None)
        if next_action(self.s, self.s, self.now, self.timing) is None:
            self._schedule()
        due = self.s.due_at
        if due is not None and due <= self.now:
            # Due but nothing to do (it should not happen): look again later, not in a loop.
            self.d.set(due_at=self.now + timedelta(seconds=self.timing.retry_delay))

    def _resend(self) -> None:
        if self.s.command_id is not None:
            self.d.emit(ResendCommand(self.s.command_id))
        self.d.set(command_sent_at=self.now)
        self._schedule()

    def _abandon(self) -> None:
        """The customer did not approve in time: cancel the payment, free the machine now."""
        window = f"not approved within {self.timing.approval_timeout:g} s"
        if not self.d.move(VendInput.APPROVAL_TIMED_OUT, window):
            return
        self.d.set(end_reason=ABANDONED, ended_at=self.now, capture_amount=0, cancel_amount=0)
        self.d.set(next_poll_at=None, due_at=self.now)

    # -- the payment -------------------------------------------------------------------------

    def created(self, event: PaymentCreated) -> None:
        # Kept even if a webhook already moved the session on: the scan needs the URL.
        self.d.set(redirect_url=self.s.redirect_url or event.redirect_url)
        if not self.d.move(VendInput.PAYMENT_CREATED):
            return
        poll = self.now + timedelta(seconds=self.timing.poll_first)
        self.d.set(payment_state="CREATED", payment_updated_at=self.now, next_poll_at=poll)
        self._schedule()

    def refused(self, event: PaymentRefused) -> None:
        self.d.emit(
            Note(Level.ERROR, f"vend {self.s.id}: Vipps refused the payment: {event.error}")
        )
        self.d.set(last_error=event.error[:500])
        self._fail_payment("REFUSED")

    def _fail_payment(self, vipps_state: str) -> bool:
        """Aborted, expired, terminated or refused: nothing was reserved, nothing to settle."""
        if not self.d.move(VendInput.PAYMENT_FAILED, vipps_state):
            return False
        self.d.set(payment_state=vipps_state, next_poll_at=None, payment_updated_at=self.now)
        self.d.set(outcome=f"payment_{vipps_state.lower()}", due_at=None)
        return True

    def read(self, facts: PaymentFacts, hints_when_asked: int | None = None) -> None:
        """A poll result: unlock, close, or look again in ``poll_interval`` seconds."""
        if self.s.state is not VendState.AWAITING_APPROVAL:
            return
        if self.now >= approval_deadline(self.s, self.timing):
            # The window closed while we asked: abandoning is due, not unlocking.
            self._schedule()
            return
        if facts.state in FINAL_FAILURES:
            moved = self._fail_payment(facts.state)
        elif facts.state == "AUTHORIZED":
            moved = self._unlock(facts)
        else:
            moved = False
        if not moved:
            due = self.s.next_poll_at
            hinted_meanwhile = (
                hints_when_asked is not None and self.s.payment_hints > hints_when_asked
            )
            if not hinted_meanwhile or due is None:
                due = self.now + timedelta(seconds=self.timing.poll_interval)
            self.d.set(payment_state=facts.state, next_poll_at=due)
            self._schedule()
        self.d.set(payment_updated_at=self.now)

    def _unlock(self, facts: PaymentFacts) -> bool:
        amount, problem = unlock_amount(facts.authorized, Money(self.s.reserved, self.s.currency))
        if problem is not None:
            self.d.alert(AlertKind.PAYMENT_DISAGREES, f"payment {self.s.id}: {problem}")
        if amount is None:
            return False  # never unlocked; the approval window cancels and releases it
        return self._authorize(amount.value, "poll")

    def _authorize(self, amount: int, source: str) -> bool:
        """The customer approved: record it, then put the `authorized` command in the outbox."""
        if not self.d.move(VendInput.PAYMENT_AUTHORIZED, f"{amount} via {source}"):
            return False
        now = self.now
        expires = now + timedelta(seconds=self.timing.authorized_ttl)
        command = command_id(self.s.id, CommandKind.AUTHORIZED)
        self.d.set(
            payment_state="AUTHORIZED",
            payment_authorized=amount,
            payment_updated_at=now,
            next_poll_at=None,
            authorized_amount=amount,
            authorized_at=now,
            settle_by=now + timedelta(seconds=self.timing.settle_deadline),
            command_id=command,
            command_expires_at=expires,
            command_sent_at=now,
        )
        money = Money(amount, self.s.currency)
        self.d.emit(SendCommand(CommandKind.AUTHORIZED, command, money, expires))
        self._schedule()
        return True

    def hinted(self, event: PaymentHinted) -> None:
        """A webhook: check what it claims against our reservation, then read the payment now."""
        reserved = (self.s.reserved, self.s.currency)
        if event.name == "AUTHORIZED" and (event.value, event.currency) != reserved:
            detail = (
                f"webhook AUTHORIZED names {event.value} {event.currency}, "
                f"reserved {self.s.reserved} {self.s.currency}; not acted on"
            )
            self.d.alert(AlertKind.PAYMENT_DISAGREES, detail)
        if hint_is_news(self.s.state, self.s.payment_state, event.name):
            self.d.set(next_poll_at=self.now, payment_hints=self.s.payment_hints + 1)
            self._schedule()

    # -- the machine -------------------------------------------------------------------------

    def dispensed(self, reported: Line) -> None:
        detail = f"item {reported.item} ok={reported.success}"
        if not self.d.move(VendInput.EDGE_DISPENSED, detail):
            return
        if reported.price.currency != self.s.currency:
            text = (
                f"vend {self.s.id}: item {reported.item} priced in "
                f"{reported.price.currency}, not charged"
            )
            self.d.emit(Note(Level.WARNING, text))
            return
        priced = self.s.pricing.charge(reported)
        if priced.mismatch is not None:
            self._price_mismatch(priced.mismatch)
        self.d.set(lines=(*self.s.lines, priced.line))

    def rejected(self, event: EdgeRejected) -> None:
        if event.duplicate or not self.d.move(VendInput.EDGE_REJECTED, event.reason):
            return
        self.d.set(end_reason=f"rejected:{event.reason}")
        self._begin_settling(())

    def ended(self, event: EdgeEnded) -> None:
        if not self.d.move(VendInput.EDGE_ENDED, event.reason):
            return
        charged = self._replace_lines(event.lines)
        self.d.set(end_reason=event.reason, ended_at=self.now)
        self._begin_settling(charged)

    def _replace_lines(self, reported: tuple[Line, ...]) -> tuple[Line, ...]:
        """`ended` lists every attempt: it replaces the `dispensed` reports seen so far. A
        mismatch the `dispensed` report of the same line already alerted is not alerted again."""
        alerted = Counter(self.s.alerted_mismatches)
        charged: list[Line] = []
        for line in reported:
            if line.price.currency != self.s.currency:
                text = f"vend {self.s.id}: line in {line.price.currency} not charged"
                self.d.emit(Note(Level.WARNING, text))
                continue
            priced = self.s.pricing.charge(line)
            if priced.mismatch is not None:
                # Identical lines have identical details: alert the ones beyond those alerted.
                if alerted[priced.mismatch] > 0:
                    alerted[priced.mismatch] -= 1
                else:
                    self._price_mismatch(priced.mismatch)
            charged.append(priced.line)
        self.d.set(lines=tuple(charged))
        return tuple(charged)

    def _price_mismatch(self, detail: str) -> None:
        self.d.alert(AlertKind.PRICE_MISMATCH, detail)
        self.d.step("price_mismatch", detail)
        self.d.set(alerted_mismatches=(*self.s.alerted_mismatches, detail))

    def _begin_settling(self, lines: tuple[Line, ...]) -> None:
        """Record the settlement decision; the money steps follow, each recorded on its own."""
        settlement = decide_settlement(Money(self.s.authorized_amount, self.s.currency), lines)
        self.d.set(
            capture_amount=settlement.capture.value,
            cancel_amount=settlement.cancel.value,
            due_at=self.now,
        )
        self.d.step("decided", f"capture {settlement.capture}, cancel {settlement.cancel}")

    # -- settlement: the results of the money steps ------------------------------------------

    def step_done(self, operation: VippsOp) -> None:
        money = {
            VippsOp.CAPTURE: ("captured_at", Money(self.s.capture_amount or 0, self.s.currency)),
            VippsOp.CANCEL: ("cancelled_at", Money(self.s.cancel_amount or 0, self.s.currency)),
        }
        if operation in money:
            name, amount = money[operation]
            self._settled_step(name, str(amount))
        elif operation is VippsOp.RECEIPT:
            self._settled_step("receipt_at", f"{len(self._charged())} lines")

    def _settled_step(self, name: str, detail: str) -> None:
        if self.s.state is not VendState.SETTLING:
            return
        if getattr(self.s, name) is None:
            self.d.set(**{name: self.now})
            self.d.step(name.removesuffix("_at"), detail)
        self.d.set(due_at=self.now)

    def _charged(self) -> tuple[Line, ...]:
        authorized = Money(self.s.authorized_amount, self.s.currency)
        return decide_settlement(authorized, self.s.lines).charged

    def _receipt(self) -> tuple[ReceiptLine, ...]:
        return tuple(receipt_lines(self._charged(), dict(self.s.names), self.s.machine_vat))

    def verified(self, facts: PaymentFacts | None) -> None:
        if self.s.state is not VendState.SETTLING or self.s.verified_at is not None:
            return
        if facts is not None:
            read = dataclasses.replace(
                self.s,
                payment_state=facts.state,
                payment_captured=facts.captured.value,
                payment_cancelled=facts.cancelled.value,
                payment_authorized=facts.authorized.value,
                payment_updated_at=self.now,
            )
            if not _agrees(read):
                problem = (
                    f"aggregate captured {read.payment_captured} + cancelled "
                    f"{read.payment_cancelled} of {read.payment_authorized} disagrees with the "
                    f"decision ({read.capture_amount or 0} + {read.cancel_amount or 0})"
                )
                # Retried with back-off like a failed call; the read is not recorded.
                self._failed(VippsOp.VERIFY, problem)
                return
            self.d.s = read
        s = self.s
        self.d.set(verified_at=self.now, due_at=self.now)
        self.d.step("verified", f"{s.payment_captured}+{s.payment_cancelled}")
        if s.end_reason == ABANDONED and s.payment_authorized > 0:
            self.d.set(cancel_amount=s.payment_cancelled)
            detail = f"approved after the approval window; {s.payment_cancelled} released"
            self.d.alert(AlertKind.LATE_APPROVAL, detail)

    def step_failed(self, event: StepFailed) -> None:
        # An abandoned scan whose create never reached Vipps: nothing exists to release or read.
        never_created = self.s.end_reason == ABANDONED and event.status == 404
        if never_created and event.operation is VippsOp.CANCEL:
            self.step_done(VippsOp.CANCEL)
        elif never_created and event.operation is VippsOp.VERIFY:
            self.verified(None)
        else:
            self._failed(event.operation, event.error)

    def _failed(self, operation: VippsOp, error: str) -> None:
        failures = self.s.failures + 1
        last_error = f"{_action_of(operation)}: {error}"[:500]
        # Back off, capped: a refusal that lasts must not flood Vipps or the log.
        wait = self.timing.retry_delay * min(2 ** (failures - 1), MAX_BACKOFF_FACTOR)
        self.d.set(
            failures=failures,
            last_error=last_error,
            due_at=self.now + timedelta(seconds=wait),
        )
        self.d.step("failed", last_error)
        text = (
            f"vend {self.s.id} machine {self.s.machine_id}: {_action_of(operation)} failed "
            f"(try {failures}, next in {wait:.1f} s): {error}"
        )
        self.d.emit(Note(Level.WARNING, text))
        if failures == int(self.timing.alert_after_failures):
            settling = self.s.state is VendState.SETTLING
            kind = AlertKind.SETTLEMENT_STUCK if settling else AlertKind.STEP_FAILING
            action = _action_of(operation)
            self.d.alert(kind, f"{error} ({action}, {failures} tries so far; still retrying)")


def _action_of(operation: VippsOp) -> Action:
    return Action.CREATE_PAYMENT if operation is VippsOp.CREATE else Action(operation.value)


def unlock_amount(authorized: Money, reserved: Money) -> tuple[Money | None, str | None]:
    """What an AUTHORIZED payment may unlock, and what disagrees with our reservation.

    ``min(aggregate.authorizedAmount, reserved)`` when the currencies match; None (unlock
    nothing) when they do not or nothing is authorized.
    """
    if authorized.currency != reserved.currency:
        return None, f"authorized in {authorized.currency}, reserved in {reserved.currency}"
    if authorized.value <= 0:
        return None, "AUTHORIZED with nothing authorized"
    problem = None
    if authorized.value > reserved.value:
        problem = f"authorized {authorized.value} is more than the {reserved.value} reserved"
    return Money(min(authorized.value, reserved.value), reserved.currency), problem


def _outcome(s: Snapshot) -> str:
    if s.end_reason == ABANDONED:
        return ABANDONED
    return "paid" if (s.capture_amount or 0) > 0 else "not_charged"


def _agrees(s: Snapshot) -> bool:
    """Vipps' aggregate shows exactly our decision, and nothing is left reserved.

    An abandoned scan decided nothing: it agrees when nothing was captured and nothing is
    left reserved (a payment that ended unapproved, or a late approval released whole).
    """
    if s.end_reason == ABANDONED:
        if s.payment_captured != 0:
            return False
        if s.payment_state in FINAL_FAILURES:
            return True
        return s.payment_state == "AUTHORIZED" and s.payment_cancelled == s.payment_authorized
    return (
        s.payment_captured == (s.capture_amount or 0)
        and s.payment_cancelled == (s.cancel_amount or 0)
        and s.payment_captured + s.payment_cancelled == s.payment_authorized
    )
