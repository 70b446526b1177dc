"""The vend session state machine and the scheduler: pure, table and hypothesis tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vendgate.cloud.db import Payment, VendSession
from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vends import (
    OPEN_STATES,
    RANK,
    TRANSITIONS,
    Action,
    VendInput,
    VendState,
    is_open,
    next_action,
    next_state,
    schedule,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TIMING = TimingSettings(authorized_resend=3.0, authorized_ttl=60.0, settle_deadline=300.0)


def run(events: list[VendInput]) -> list[VendState]:
    state, visited = VendState.CREATING, [VendState.CREATING]
    for event in events:
        state = next_state(state, event) or state
        visited.append(state)
    return visited


@given(st.lists(st.sampled_from(list(VendInput)), max_size=30))
def test_a_session_never_moves_backwards(events: list[VendInput]) -> None:
    ranks = [RANK[state] for state in run(events)]
    assert ranks == sorted(ranks)


@given(st.lists(st.sampled_from(list(VendInput)), max_size=30))
def test_closed_is_final(events: list[VendInput]) -> None:
    for event in events:
        assert next_state(VendState.CLOSED, event) is None


@given(st.lists(st.sampled_from(list(VendInput)), max_size=30))
def test_a_repeated_event_changes_nothing_after_the_first(
    events: list[VendInput],
) -> None:
    doubled = [e for event in events for e in (event, event)]
    assert run(doubled)[-1] == run(events)[-1]


@given(st.lists(st.sampled_from(list(VendInput)), max_size=30))
def test_money_can_only_be_settled_after_authorization(events: list[VendInput]) -> None:
    """Settling without an authorization is only the release of an abandoned scan."""
    visited = run(events)
    if VendState.SETTLING in visited and VendState.AUTHORIZED not in visited:
        first_settling = visited.index(VendState.SETTLING)
        assert events[first_settling - 1] is VendInput.APPROVAL_TIMED_OUT


@given(st.lists(st.sampled_from(list(VendInput)), max_size=30))
def test_an_approval_after_the_window_never_unlocks(events: list[VendInput]) -> None:
    timed_out = [*events, VendInput.APPROVAL_TIMED_OUT]
    visited = run(timed_out)
    after = run([*timed_out, VendInput.PAYMENT_AUTHORIZED, *events])
    if visited[-1] is VendState.SETTLING and VendState.AUTHORIZED not in visited:
        assert VendState.AUTHORIZED not in after


def test_the_machine_is_busy_exactly_until_the_edge_is_done() -> None:
    assert {s for s in VendState if is_open(s)} == OPEN_STATES
    assert not is_open(VendState.SETTLING)
    assert not is_open(VendState.CLOSED)


@pytest.mark.parametrize(
    ("state", "event", "target"),
    [
        (VendState.AWAITING_APPROVAL, VendInput.PAYMENT_AUTHORIZED, VendState.AUTHORIZED),
        (VendState.AUTHORIZED, VendInput.EDGE_DISPENSED, VendState.VENDING),  # reordered
        (VendState.AUTHORIZED, VendInput.EDGE_REJECTED, VendState.SETTLING),
        (VendState.VENDING, VendInput.EDGE_REJECTED, None),  # a late duplicate-command answer
        (VendState.SETTLING, VendInput.EDGE_ENDED, None),  # ended after giving up
        (VendState.AWAITING_APPROVAL, VendInput.EDGE_STARTED, None),  # an edge cannot self-start
    ],
)
def test_table_examples(state: VendState, event: VendInput, target: VendState | None) -> None:
    assert next_state(state, event) is target
    assert ((state, event) in TRANSITIONS) == (target is not None)


def authorized_vend(**changes: object) -> VendSession:
    vend = VendSession(
        id="vs-1",
        machine_id="m1",
        state=VendState.AUTHORIZED,
        status_token="t",
        currency="NOK",
        max_amount=3500,
        created_at=T0,
        updated_at=T0,
        command_sent_at=T0,
        command_expires_at=T0 + timedelta(seconds=TIMING.authorized_ttl),
        settle_by=T0 + timedelta(seconds=TIMING.settle_deadline),
    )
    for name, value in changes.items():
        setattr(vend, name, value)
    return vend


def payment() -> Payment:
    return Payment(reference="vs-1", vend_id="vs-1", amount=3500, currency="NOK", updated_at=T0)


def test_the_authorized_command_is_resent_until_it_expires_then_the_deadline_settles() -> None:
    vend = authorized_vend()
    assert next_action(vend, payment(), T0 + timedelta(seconds=1), TIMING) is None
    assert next_action(vend, payment(), T0 + timedelta(seconds=3), TIMING) is Action.RESEND_COMMAND
    vend.command_sent_at = T0 + timedelta(seconds=58)  # the next re-send would be too late
    assert next_action(vend, payment(), T0 + timedelta(seconds=100), TIMING) is None
    assert next_action(vend, payment(), T0 + timedelta(seconds=300), TIMING) is Action.GIVE_UP


def test_schedule_points_at_the_next_thing_due() -> None:
    vend = authorized_vend()
    schedule(vend, payment(), TIMING)
    assert vend.due_at == T0 + timedelta(seconds=3)
    vend.state = VendState.VENDING
    schedule(vend, payment(), TIMING)
    assert vend.due_at == T0 + timedelta(seconds=300)
    vend.state = VendState.CLOSED
    schedule(vend, payment(), TIMING)
    assert vend.due_at is None


def test_polling_waits_for_its_time() -> None:
    vend = authorized_vend(state=VendState.AWAITING_APPROVAL)
    polled = payment()
    polled.next_poll_at = T0 + timedelta(seconds=5)
    assert next_action(vend, polled, T0 + timedelta(seconds=4), TIMING) is None
    assert next_action(vend, polled, T0 + timedelta(seconds=5), TIMING) is Action.POLL
