"""The vend core's money rules over random interleavings, duplicates and crashes.

A hypothesis ``RuleBasedStateMachine`` drives ``decide`` the way the service does: every
decision is recorded (its snapshot and its row effects are one transaction), the Vipps calls
it asks for are carried out against a small model of Vipps that applies each idempotency key
once, and their answers come back as inputs. Between any two steps the customer may approve or
abort, the machine may report anything, a webhook may arrive, time may pass, any input may be
delivered twice, a Vipps call may fail, and the process may crash: a crash drops the calls and
answers not yet recorded (the Vipps side may have happened already).

The run is derandomized (the same examples every time) and ends with a coverage check: every
``VendState`` and every kind of effect was reached, or the test fails.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vends import (
    Alert,
    CallVipps,
    CommandKind,
    Decision,
    EdgeDispensed,
    EdgeEnded,
    EdgeRejected,
    EdgeStarted,
    Input,
    Line,
    LogStep,
    Note,
    PaymentCreated,
    PaymentFacts,
    PaymentHinted,
    PaymentRead,
    PriceMode,
    Pricing,
    Released,
    SendCommand,
    Snapshot,
    StepDone,
    StepFailed,
    TimePassed,
    VendState,
    VerifyRead,
    VippsOp,
    decide,
)
from vendgate.protocol import Money

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
VEND = "vs-0123456789abcdef0123456789abcdef"
PLANOGRAM = {1: 2000, 2: 1500, 3: 500}
RESERVED = max(PLANOGRAM.values())
TIMING = TimingSettings(
    approval_timeout=90,
    poll_first=5,
    poll_interval=2,
    settle_deadline=120,
    authorized_resend=3,
    authorized_ttl=60,
    retry_delay=2,
    alert_after_failures=2,
)

# What the runs reached, over every example: the coverage check at the end reads it.
REACHED: Counter[str] = Counter()


def nok(value: int) -> Money:
    return Money(value, "NOK")


def effect_name(effect: object) -> str:
    if isinstance(effect, CallVipps):
        return f"call:{effect.operation}"
    if isinstance(effect, SendCommand):
        return f"command:{effect.kind}"
    if isinstance(effect, Alert):
        return f"alert:{effect.kind}"
    return type(effect).__name__


EVERY_EFFECT = {
    *(f"call:{op}" for op in VippsOp),
    *(f"command:{kind}" for kind in CommandKind),
    "ResendCommand",
    "LogStep",
    "Note",
    "Alert",
    "alert:payment_disagrees",
    "alert:price_mismatch",
    "alert:late_approval",
    "alert:step_failing",
    "alert:settlement_stuck",
}


def charged_by_the_rules(authorized: int, lines: list[Line]) -> int:
    """The money rule, written out independently: successful items at the planogram's price,
    in the order reported, each only if it still fits in the authorization; a line reported in
    another currency than the session's is never charged."""
    total = 0
    for line in lines:
        price = PLANOGRAM.get(line.item, 0) if line.price.currency == "NOK" else 0
        if line.success and price > 0 and total + price <= authorized:
            total += price
    return total


class VippsModel:
    """One payment at Vipps: each idempotency key takes effect once."""

    def __init__(self) -> None:
        self.exists = False
        self.state = "CREATED"
        self.authorized = 0
        self.captured = 0
        self.cancelled = 0
        self.keys: set[str] = set()

    def facts(self) -> PaymentFacts:
        return PaymentFacts(
            self.state, nok(self.authorized), nok(self.captured), nok(self.cancelled)
        )

    def carry_out(self, call: CallVipps) -> Input:
        op = call.operation
        if op is VippsOp.CREATE:
            self.exists = True
            return PaymentCreated(f"https://vipps.test/{VEND}")
        if not self.exists:
            return StepFailed(op, "404 not found", 404)
        if op is VippsOp.POLL:
            return PaymentRead(self.facts())
        if op is VippsOp.VERIFY:
            return VerifyRead(self.facts())
        if op is VippsOp.RECEIPT:
            return StepDone(op)
        assert call.idempotency_key is not None
        if call.idempotency_key in self.keys:
            return StepDone(op)  # a repeat: the same answer, no second effect
        if op is VippsOp.CAPTURE:
            assert call.amount is not None
            if self.state != "AUTHORIZED" or call.amount.value > self.authorized - self.cancelled:
                return StepFailed(op, "400 cannot capture", 400)
            self.captured += call.amount.value
        elif op is VippsOp.CANCEL:
            if self.state == "AUTHORIZED":
                self.cancelled = self.authorized - self.captured
            elif self.state == "CREATED":
                self.state = "TERMINATED"
        self.keys.add(call.idempotency_key)
        return StepDone(op)


class VendSessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.snapshot = Snapshot(
            id=VEND,
            machine_id="m1",
            currency="NOK",
            state=VendState.CREATING,
            reserved=RESERVED,
            created_at=T0,
            updated_at=T0,
            due_at=T0,
            pricing=Pricing(PriceMode.PLANOGRAM, PLANOGRAM),
            names={item: (f"item {item}", 2500) for item in PLANOGRAM},
            machine_vat=2500,
        )
        self.vipps = VippsModel()
        self.calls: list[CallVipps] = []  # asked for, not yet carried out
        self.answers: list[Input] = []  # carried out, not yet recorded
        self.last: Input | None = None
        self.effects: list[object] = []  # every recorded effect
        self.reported: list[Line] = []  # lines the settlement must charge, as the edge said
        self.settled_on: list[Line] | None = None

    # -- the service's loop --------------------------------------------------------------

    def record(self, fact: Input) -> Decision:
        before = self.snapshot
        decision = decide(before, fact, self.now, TIMING)
        self.snapshot, self.last = decision.snapshot, fact
        self.effects.extend(decision.effects)
        self.calls.extend(decision.calls())
        for effect in decision.effects:
            REACHED[effect_name(effect)] += 1
            REACHED[type(effect).__name__] += 1
            if currently_in_test_context():
                event(effect_name(effect))  # shown by pytest --hypothesis-show-statistics
            if isinstance(effect, SendCommand) and effect.kind is CommandKind.AUTHORIZED:
                window = T0 + timedelta(seconds=TIMING.approval_timeout)
                assert self.now < window, "unlocked after the approval window"
        REACHED[f"state:{self.snapshot.state}"] += 1
        self._follow_lines(before, fact)
        return decision

    def _follow_lines(self, before: Snapshot, fact: Input) -> None:
        """Which reported lines the settlement must charge, by the contract's rules."""
        after = self.snapshot.state
        accepted = before.state in (VendState.AUTHORIZED, VendState.VENDING)
        # A line in another currency is never charged.
        nok_line = isinstance(fact, EdgeDispensed) and fact.line.price.currency == "NOK"
        if isinstance(fact, EdgeDispensed) and after is VendState.VENDING and accepted and nok_line:
            self.reported.append(fact.line)
        if before.state is not VendState.SETTLING and after is VendState.SETTLING:
            if isinstance(fact, EdgeEnded):
                self.settled_on = list(fact.lines)
            elif isinstance(fact, EdgeRejected) or before.end_reason is not None:
                self.settled_on = []
            elif isinstance(fact, TimePassed) and self.snapshot.end_reason is None:
                self.settled_on = list(self.reported)  # the deadline: what was reported
            else:
                self.settled_on = []

    @rule()
    def look(self) -> None:
        self.record(TimePassed())

    @rule()
    def work(self) -> None:
        """What the reconciler does with a claimed session: look, call, record, repeat."""
        for _ in range(6):
            if not self.record(TimePassed()).acted:
                break
            while self.calls:
                self.call_vipps()
            while self.answers:
                self.answer()
        self.record(Released())

    @precondition(lambda m: bool(m.calls))
    @rule()
    def call_vipps(self) -> None:
        if self.calls:
            self.answers.append(self.vipps.carry_out(self.calls.pop(0)))

    @precondition(lambda m: bool(m.calls))
    @rule()
    def vipps_fails(self) -> None:
        if self.calls:
            call = self.calls.pop(0)
            self.answers.append(StepFailed(call.operation, "503 try later", 503))

    @precondition(lambda m: bool(m.answers))
    @rule()
    def answer(self) -> None:
        if self.answers:
            self.record(self.answers.pop(0))

    @precondition(lambda m: bool(m.answers))
    @rule(seconds=st.sampled_from([30, 90]))
    def slow_answer(self, seconds: int) -> None:
        """Vipps answered, but the answer is recorded only ``seconds`` later."""
        if self.answers:
            self.now += timedelta(seconds=seconds)
            self.answer()

    @rule()
    def crash(self) -> None:
        """The process dies: what was committed stays, calls and answers in flight are lost."""
        REACHED["crash"] += 1
        self.calls.clear()
        self.answers.clear()

    @precondition(lambda m: m.last is not None)
    @rule()
    def duplicate(self) -> None:
        if self.last is not None:
            self.record(self.last)

    @rule(seconds=st.sampled_from([1, 3, 3, 5, 30, 61, 90, 120]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    # -- the customer and Vipps ----------------------------------------------------------

    @precondition(lambda m: m.vipps.exists and m.vipps.state == "CREATED")
    @rule()
    def customer_approves(self) -> None:
        if self.vipps.exists and self.vipps.state == "CREATED":
            self.vipps.state, self.vipps.authorized = "AUTHORIZED", RESERVED

    @precondition(lambda m: m.vipps.exists and m.vipps.state == "CREATED")
    @rule()
    def customer_aborts(self) -> None:
        if self.vipps.exists and self.vipps.state == "CREATED":
            self.vipps.state = "ABORTED"

    @rule(amount=st.sampled_from([RESERVED, RESERVED + 500]))
    def webhook(self, amount: int) -> None:
        self.record(PaymentHinted(self.vipps.state, amount, "NOK"))

    # -- the machine ---------------------------------------------------------------------

    @rule()
    def edge_started(self) -> None:
        self.record(EdgeStarted(str(nok(RESERVED))))

    lines = st.builds(
        Line,
        item=st.sampled_from([1, 2, 3, 9]),
        price=st.sampled_from([nok(500), nok(1500), nok(2000), Money(100, "SEK")]),
        success=st.booleans(),
    )

    @rule(line=lines)
    def edge_dispensed(self, line: Line) -> None:
        self.record(EdgeDispensed(line))

    @rule(extra=st.lists(lines, max_size=2))
    def edge_ended(self, extra: list[Line]) -> None:
        self.record(EdgeEnded("completed", (*self.reported, *extra)))

    @rule(duplicate=st.booleans())
    def edge_rejected(self, duplicate: bool) -> None:
        self.record(EdgeRejected("busy", duplicate=duplicate))

    # -- the money rules -----------------------------------------------------------------

    @invariant()
    def never_more_than_authorized(self) -> None:
        assert self.vipps.captured <= self.vipps.authorized

    @invariant()
    def one_capture_and_one_cancel_per_session(self) -> None:
        calls = [e for e in self.effects if isinstance(e, CallVipps)]
        captures = {(c.idempotency_key, c.amount) for c in calls if c.operation is VippsOp.CAPTURE}
        cancels = {c.idempotency_key for c in calls if c.operation is VippsOp.CANCEL}
        assert len(captures) <= 1, captures
        assert cancels <= {f"{VEND}-cancel"}
        assert all(key == f"{VEND}-capture" for key, _ in captures)
        commands = Counter(e.kind for e in self.effects if isinstance(e, SendCommand))
        assert all(count == 1 for count in commands.values()), commands

    @invariant()
    def no_capture_without_a_successful_item(self) -> None:
        if any(isinstance(e, CallVipps) and e.operation is VippsOp.CAPTURE for e in self.effects):
            assert self.settled_on is not None
            assert charged_by_the_rules(RESERVED, self.settled_on) > 0

    @invariant()
    def settled_means_captured_plus_cancelled_is_authorized(self) -> None:
        s = self.snapshot
        if s.state is not VendState.CLOSED or s.outcome not in ("paid", "not_charged", "abandoned"):
            return
        REACHED[f"outcome:{s.outcome}"] += 1
        assert self.vipps.captured + self.vipps.cancelled == self.vipps.authorized
        if s.outcome == "abandoned":
            assert self.vipps.captured == 0
            return
        assert self.settled_on is not None
        assert self.vipps.captured == charged_by_the_rules(s.authorized_amount, self.settled_on)


def test_the_money_rules_hold_over_random_interleavings_duplicates_and_crashes() -> None:
    REACHED.clear()
    run_state_machine_as_test(
        VendSessionMachine,
        settings=settings(
            max_examples=1500,
            stateful_step_count=60,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    states = {f"state:{state}" for state in VendState}
    outcomes = {f"outcome:{o}" for o in ("paid", "not_charged", "abandoned")}
    missing = sorted((states | outcomes | EVERY_EFFECT | {"crash"}) - set(REACHED))
    assert not missing, f"the runs never reached {missing}"


def test_the_machine_reaches_a_paid_settlement_on_a_straight_path() -> None:
    """A guide through the machine's rules (so a broken rule shows here first)."""
    m = VendSessionMachine()
    m.look()
    m.call_vipps()
    m.answer()
    m.customer_approves()
    m.time_passes(5)
    m.look()
    m.call_vipps()
    m.answer()
    assert m.snapshot.state is VendState.AUTHORIZED
    m.edge_dispensed(Line(2, nok(1500), True))
    m.edge_ended([])
    for _ in range(4):  # capture, cancel, verify, receipt
        m.look()
        m.call_vipps()
        m.answer()
    m.look()
    assert m.snapshot.state is VendState.CLOSED
    assert m.snapshot.outcome == "paid"
    assert (m.vipps.captured, m.vipps.cancelled) == (1500, 500)
    assert not [e for e in m.effects if isinstance(e, Note) and "ignored" in e.text]
    steps = [e.step for e in m.effects if isinstance(e, LogStep)]
    assert steps[-6:] == ["decided", "captured", "cancelled", "verified", "receipt", "settled"]


def test_a_poll_answered_after_the_approval_window_unlocks_nothing() -> None:
    """The interleaving the window rule is for, spelled out: the poll is asked in time, its
    answer (AUTHORIZED) is recorded after the window; the session is abandoned instead."""
    m = VendSessionMachine()
    m.work()  # the payment is created
    m.customer_approves()
    m.time_passes(5)
    m.look()
    m.call_vipps()  # the poll, asked within the window
    m.slow_answer(90)
    assert m.snapshot.state is VendState.AWAITING_APPROVAL
    assert not [e for e in m.effects if isinstance(e, SendCommand)]
    m.work()  # abandon, cancel everything, verify, close
    assert (m.snapshot.state, m.snapshot.outcome) == (VendState.CLOSED, "abandoned")
    assert (m.vipps.captured, m.vipps.cancelled) == (0, RESERVED)
    assert "alert:late_approval" in {effect_name(e) for e in m.effects}


@pytest.mark.parametrize("hint_after", [0, 1], ids=["same-instant", "a-second-later"])
def test_a_webhook_hint_during_a_poll_is_not_overwritten_by_its_answer(hint_after: int) -> None:
    """The poll asks (CREATED), the customer approves and the webhook hints "read now", then
    the stale answer arrives: the read stays due now instead of waiting a poll interval.

    Also when the hint lands at the very instant the read was asked (a clock that has not
    moved, as in tests; or a coarse one): what counts is that a hint came, not when."""
    asked = T0 + timedelta(seconds=5)
    waiting = Snapshot(
        id=VEND,
        machine_id="m1",
        currency="NOK",
        state=VendState.AWAITING_APPROVAL,
        reserved=RESERVED,
        created_at=T0,
        updated_at=T0,
        due_at=asked,
        next_poll_at=asked,
        pricing=Pricing(PriceMode.PLANOGRAM, PLANOGRAM),
        names={},
        machine_vat=2500,
    )
    hints_when_asked = waiting.payment_hints
    hinted_at = asked + timedelta(seconds=hint_after)
    hinted = decide(waiting, PaymentHinted("AUTHORIZED", RESERVED, "NOK"), hinted_at, TIMING)
    assert hinted.snapshot.next_poll_at == hinted_at
    assert hinted.snapshot.payment_hints == hints_when_asked + 1
    created = PaymentFacts("CREATED", nok(0), nok(0), nok(0))
    answered_at = hinted_at + timedelta(seconds=hint_after)
    read = PaymentRead(created, hints_when_asked)
    stale = decide(hinted.snapshot, read, answered_at, TIMING)
    assert stale.snapshot.next_poll_at == hinted_at  # still due: the hint stands
    assert stale.snapshot.due_at is not None
    assert stale.snapshot.due_at <= answered_at
    # The read that follows covers that hint: its answer waits the interval again.
    fresh = decide(
        stale.snapshot, PaymentRead(created, stale.snapshot.payment_hints), answered_at, TIMING
    )
    assert fresh.snapshot.next_poll_at == answered_at + timedelta(seconds=TIMING.poll_interval)
    # Without a hint in between, the next read waits its interval as before.
    plain = decide(waiting, read, answered_at, TIMING)
    assert plain.snapshot.next_poll_at == answered_at + timedelta(seconds=TIMING.poll_interval)
