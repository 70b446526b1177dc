"""What a session needs next and when: pure functions of its rows and the time.

The reconciler runs whatever ``next_action`` says for every session whose ``due_at`` has come;
``schedule`` keeps ``due_at`` equal to the earliest time ``next_action`` could say something.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from vendgate.cloud.clock import as_utc

from ._settlement import SettleProgress, SettleStep, next_settle_step
from ._states import VendState

if TYPE_CHECKING:
    from vendgate.cloud.settings import TimingSettings


class Session(Protocol):
    """What scheduling reads of a session: its row, or the core's snapshot of it."""

    @property
    def state(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def settle_by(self) -> datetime | None: ...
    @property
    def command_sent_at(self) -> datetime | None: ...
    @property
    def command_expires_at(self) -> datetime | None: ...
    @property
    def capture_amount(self) -> int | None: ...
    @property
    def cancel_amount(self) -> int | None: ...
    @property
    def end_reason(self) -> str | None: ...
    @property
    def captured_at(self) -> datetime | None: ...
    @property
    def cancelled_at(self) -> datetime | None: ...
    @property
    def verified_at(self) -> datetime | None: ...
    @property
    def receipt_at(self) -> datetime | None: ...


class Polled(Protocol):
    """What scheduling reads of a payment: when it is to be read back next."""

    @property
    def next_poll_at(self) -> datetime | None: ...


class Scheduled(Session, Protocol):
    due_at: datetime | None


class Action(StrEnum):
    CREATE_PAYMENT = "create_payment"
    POLL = "poll"
    RESEND_COMMAND = "resend_command"
    GIVE_UP = "give_up"  # the machine never reported: settle with what is known
    ABANDON = "abandon"  # the customer never approved: cancel the payment, free the machine
    CAPTURE = SettleStep.CAPTURE.value
    CANCEL = SettleStep.CANCEL.value
    VERIFY = SettleStep.VERIFY.value
    RECEIPT = SettleStep.RECEIPT.value
    CLOSE = "close"


ABANDONED = "abandoned"  # end_reason and outcome of a session the customer never approved


def settle_progress(vend: Session) -> SettleProgress:
    return SettleProgress(
        capture=vend.capture_amount or 0,
        cancel=vend.cancel_amount or 0,
        release_all=vend.end_reason == ABANDONED,
        captured=vend.captured_at is not None,
        cancelled=vend.cancelled_at is not None,
        verified=vend.verified_at is not None,
        receipt_posted=vend.receipt_at is not None,
    )


def _resend_at(vend: Session, timing: TimingSettings) -> datetime | None:
    """When the `authorized` command goes out again, if it still can (not expired)."""
    if vend.command_sent_at is None or vend.command_expires_at is None:
        return None
    at = as_utc(vend.command_sent_at) + timedelta(seconds=timing.authorized_resend)
    return at if at < as_utc(vend.command_expires_at) else None


def _times(vend: Session, payment: Polled | None, timing: TimingSettings) -> dict[Action, datetime]:
    """Each action the session may need, and from when."""
    state = VendState(vend.state)
    abandon_at = approval_deadline(vend, timing)
    if state is VendState.CREATING:
        created = as_utc(vend.due_at or vend.created_at)
        return {Action.CREATE_PAYMENT: created, Action.ABANDON: abandon_at}
    if state is VendState.AWAITING_APPROVAL:
        poll = payment.next_poll_at if payment is not None else None
        waiting: dict[Action, datetime] = {Action.ABANDON: abandon_at}
        if poll is not None:
            waiting[Action.POLL] = as_utc(poll)
        return waiting
    if state in (VendState.AUTHORIZED, VendState.VENDING):
        times: dict[Action, datetime] = {}
        if vend.settle_by is not None:
            times[Action.GIVE_UP] = as_utc(vend.settle_by)
        resend = _resend_at(vend, timing)
        if state is VendState.AUTHORIZED and resend is not None:
            times[Action.RESEND_COMMAND] = resend
        return times
    if state is VendState.SETTLING:
        step = next_settle_step(settle_progress(vend))
        action = Action.CLOSE if step is None else Action(step.value)
        return {action: as_utc(vend.due_at or vend.updated_at)}
    return {}


def approval_deadline(vend: Session, timing: TimingSettings) -> datetime:
    """When a scan the customer has not approved is abandoned."""
    return as_utc(vend.created_at) + timedelta(seconds=timing.approval_timeout)


def next_action(
    vend: Session, payment: Polled | None, now: datetime, timing: TimingSettings
) -> Action | None:
    """The action due now, or None. Deadlines win: giving up over re-sending, abandoning
    over polling (an approval first seen after the window unlocks nothing)."""
    due = [action for action, at in _times(vend, payment, timing).items() if at <= now]
    for deadline in (Action.GIVE_UP, Action.ABANDON):
        if deadline in due:
            return deadline
    return due[0] if due else None


def due_at(vend: Session, payment: Polled | None, timing: TimingSettings) -> datetime | None:
    """The earliest time an action becomes due (None: nothing left)."""
    times = _times(vend, payment, timing).values()
    return min(times) if times else None


def schedule(vend: Scheduled, payment: Polled | None, timing: TimingSettings) -> None:
    """Set ``due_at`` to the earliest time an action becomes due (None: nothing left)."""
    vend.due_at = due_at(vend, payment, timing)
