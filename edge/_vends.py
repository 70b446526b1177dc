"""The vend rules of the core: which ``authorized`` starts a session, and what each reader event
reports. At most one vend is active (``pending`` or ``open``) at a time.

- A vend id is acted on once. A repeated ``authorized`` re-publishes the vend's latest outcome
  (``started`` while it runs, ``ended`` after), or answers ``rejected``/``duplicate`` if it never
  started; while it is still starting, the repeat is only logged.
- The vend is recorded (``pending``) in the same step that asks the reader for BEGIN SESSION, and
  that record is durable first: even a crash right after cannot give a vend id two sessions.
- An approved item whose result never came is reported as failed: never charge for an item that
  may not have dropped.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from vendgate.edge._actions import CancelSession, Log, StartSession
from vendgate.edge._inputs import (
    BeginFailed,
    Board,
    ItemApproved,
    ItemResult,
    SessionEnded,
    SessionFunded,
)
from vendgate.edge._ledger import Ledger
from vendgate.edge._records import Approval, VendPhase, VendRecord
from vendgate.edge._step import Step
from vendgate.protocol import Money
from vendgate.protocol.mqtt import (
    Authorized,
    Cancel,
    Dispensed,
    DispensedItem,
    Ended,
    EndReason,
    Rejected,
    RejectReason,
    Started,
)

__all__ = ["VendRules"]

# Reader states in which a session is running: a new one would be "busy", not "board down".
_IN_SESSION = frozenset({"session_idle", "vend"})


class VendRules:
    def __init__(self, ledger: Ledger, *, currency: str, begin_timeout_s: float) -> None:
        self.ledger = ledger
        self.currency = currency
        self.begin_timeout = timedelta(seconds=begin_timeout_s)
        self._current: str | None = None  # the active vend's id

    # -- commands -----------------------------------------------------------------------------

    def authorized(self, step: Step, command: Authorized, board: Board) -> None:
        known = self.ledger.vend(command.vend_id)
        if known is not None:
            self._repeated(step, known)
            return
        refusal = self._refusal(step.now, command, board)
        if refusal is not None:
            self._reject(step, command.vend_id, command.amount, refusal)
            return
        self._current = command.vend_id
        pending = VendRecord(command.vend_id, VendPhase.PENDING, command.amount, step.now)
        self.ledger.save(step, pending)
        step.do(StartSession(command.vend_id, command.amount.value))
        step.log(Log.info("vend.begin", vend_id=command.vend_id, amount=command.amount.format()))

    def _refusal(self, now: datetime, command: Authorized, board: Board) -> RejectReason | None:
        if command.is_expired(now):
            return RejectReason.EXPIRED
        if command.amount.currency != self.currency or command.amount.value == 0:
            return RejectReason.INVALID
        if self._current is not None:
            return RejectReason.BUSY
        if board.can_begin_session:
            return None
        return RejectReason.BUSY if board.state in _IN_SESSION else RejectReason.BOARD_DOWN

    def _repeated(self, step: Step, vend: VendRecord) -> None:
        """The same vend id again: never act twice; tell the cloud where the vend stands."""
        vend_id = vend.vend_id
        if vend.phase is VendPhase.PENDING:
            step.log(Log.info("vend.duplicate_while_starting", vend_id=vend_id))
        elif vend.phase is VendPhase.REJECTED:
            step.log(Log.info("vend.duplicate_of_rejected", vend_id=vend_id))
            self.ledger.emit(
                step,
                vend_id,
                lambda seq: Rejected.create(
                    now=step.now, seq=seq, vend_id=vend_id, reason=RejectReason.DUPLICATE
                ),
            )
        elif vend.outcome is not None:
            step.log(Log.info("vend.duplicate", vend_id=vend_id, reported=vend.outcome.name))
            self.ledger.publish(step, vend.outcome)

    def cancel(self, step: Step, command: Cancel) -> None:
        vend = self.ledger.vend(command.vend_id)
        if vend is None:
            # Cancelled before its authorization arrived (or after we forgot it): record it as
            # over, so a late ``authorized`` for it cannot start a session.
            step.log(Log.info("vend.cancelled_before_start", vend_id=command.vend_id))
            zero = Money.zero(self.currency)
            unknown = VendRecord(command.vend_id, VendPhase.PENDING, zero, step.now)
            self._end_session(step, unknown, EndReason.CANCELLED)
        elif vend.phase is VendPhase.PENDING:
            step.do(CancelSession(vend.vend_id))
            step.log(Log.info("vend.cancelled_while_starting", vend_id=vend.vend_id))
            self._end_session(step, vend, EndReason.CANCELLED)
        elif vend.phase is VendPhase.OPEN:
            step.do(CancelSession(vend.vend_id))
            step.log(Log.info("vend.cancel_requested", vend_id=vend.vend_id))
        else:
            step.log(Log.info("vend.cancel_after_end", vend_id=vend.vend_id, phase=vend.phase))

    # -- the reader ---------------------------------------------------------------------------

    def begin_failed(self, step: Step, event: BeginFailed) -> None:
        vend = self._current_vend(VendPhase.PENDING)
        if vend is None or vend.vend_id != event.vend_id:
            step.log(Log.warning("vend.begin_failed_stale", vend_id=event.vend_id))
            return
        in_session = event.board.state in _IN_SESSION
        reason = RejectReason.BUSY if in_session else RejectReason.BOARD_DOWN
        step.log(Log.warning("vend.begin_failed", vend_id=vend.vend_id, error=event.error))
        self._reject(step, vend.vend_id, vend.amount, reason)

    def session_funded(self, step: Step, event: SessionFunded) -> None:
        vend = self._current_vend(VendPhase.PENDING)
        if vend is None:
            # A session nobody here asked for (or one we already gave up on): end it.
            step.log(Log.warning("session.unexpected", funds=event.funds))
            step.do(CancelSession(None))
            return
        started = self.ledger.emit(
            step,
            vend.vend_id,
            lambda seq: Started.create(
                now=step.now, seq=seq, vend_id=vend.vend_id, funds=vend.amount
            ),
        )
        opened = _replace(vend, phase=VendPhase.OPEN, updated=step.now, outcome=started)
        self.ledger.save(step, opened)
        step.log(Log.info("vend.started", vend_id=vend.vend_id, funds=event.funds))

    def item_approved(self, step: Step, event: ItemApproved) -> None:
        vend = self._current_vend(VendPhase.OPEN)
        if vend is None:
            step.log(Log.warning("vend.approved_outside_session", item=event.item))
            return
        currency = vend.amount.currency
        approval = Approval(
            event.item, Money(event.price, currency), _money(event.vmc_price, currency)
        )
        self.ledger.save(step, _replace(vend, in_flight=approval, updated=step.now))
        step.log(Log.info("vend.approved", vend_id=vend.vend_id, item=event.item))

    def item_result(self, step: Step, event: ItemResult) -> None:
        vend = self._current_vend(VendPhase.OPEN)
        if vend is None:
            step.log(Log.warning("vend.result_outside_session", item=event.item))
            return
        currency = vend.amount.currency
        line = DispensedItem(
            item=event.item,
            price=Money(event.price, currency),
            success=event.success,
            vmc_price=_money(event.vmc_price, currency),
        )
        self._dispensed(step, vend, line)

    def session_ended(self, step: Step, event: SessionEnded) -> None:
        vend = self.ledger.vend(self._current)
        if vend is None:
            step.log(Log.info("session.closed_without_vend", reason=event.reason))
        elif vend.phase is VendPhase.PENDING:
            step.log(Log.warning("vend.never_started", vend_id=vend.vend_id, reason=event.reason))
            self._reject(step, vend.vend_id, vend.amount, RejectReason.BOARD_DOWN)
        else:
            self._end_session(step, vend, event.reason)

    # -- after a restart, and on timers -------------------------------------------------------

    def finish_after_restart(self, step: Step) -> None:
        """The reader restarted with this process: whatever session the board had is gone."""
        for vend in self.ledger.active_vends():
            if vend.phase is VendPhase.PENDING:
                step.log(Log.warning("vend.abandoned_at_restart", vend_id=vend.vend_id))
                self._reject(step, vend.vend_id, vend.amount, RejectReason.BOARD_DOWN)
            else:
                step.log(Log.warning("vend.interrupted_by_restart", vend_id=vend.vend_id))
                self._end_session(step, vend, EndReason.BOARD_RESET)

    def give_up_stuck_start(self, step: Step) -> None:
        vend = self._current_vend(VendPhase.PENDING)
        if vend is not None and step.now - vend.updated >= self.begin_timeout:
            step.log(Log.warning("vend.begin_timed_out", vend_id=vend.vend_id))
            step.do(CancelSession(vend.vend_id))
            self._reject(step, vend.vend_id, vend.amount, RejectReason.BOARD_DOWN)

    # -- outcomes -----------------------------------------------------------------------------

    def _dispensed(self, step: Step, vend: VendRecord, line: DispensedItem) -> VendRecord:
        self.ledger.emit(
            step,
            vend.vend_id,
            lambda seq: Dispensed.create(
                now=step.now,
                seq=seq,
                vend_id=vend.vend_id,
                item=line.item,
                price=line.price,
                success=line.success,
                vmc_price=line.vmc_price,
            ),
        )
        updated = _replace(vend, lines=(*vend.lines, line), in_flight=None, updated=step.now)
        self.ledger.save(step, updated)
        step.log(
            Log.info(
                "vend.dispensed",
                vend_id=vend.vend_id,
                item=line.item,
                price=line.price.format(),
                success=line.success,
            )
        )
        return updated

    def _end_session(self, step: Step, vend: VendRecord, reason: EndReason) -> None:
        if vend.in_flight is not None:
            # The board never said whether the approved item dropped: report it as failed.
            step.log(Log.warning("vend.outcome_unknown", vend_id=vend.vend_id))
            approval = vend.in_flight
            failed = DispensedItem(
                item=approval.item,
                price=approval.price,
                success=False,
                vmc_price=approval.vmc_price,
            )
            vend = self._dispensed(step, vend, failed)
        ended = self.ledger.emit(
            step,
            vend.vend_id,
            lambda seq: Ended.create(
                now=step.now,
                seq=seq,
                vend_id=vend.vend_id,
                reason=reason,
                dispensed=vend.lines,
                currency=vend.amount.currency,
            ),
        )
        closed = _replace(vend, phase=VendPhase.ENDED, updated=step.now, outcome=ended)
        self.ledger.save(step, closed)
        self._release(vend.vend_id)
        step.log(Log.info("vend.ended", vend_id=vend.vend_id, reason=reason))

    def _reject(self, step: Step, vend_id: str, amount: Money, reason: RejectReason) -> None:
        rejected = self.ledger.emit(
            step,
            vend_id,
            lambda seq: Rejected.create(now=step.now, seq=seq, vend_id=vend_id, reason=reason),
        )
        record = VendRecord(vend_id, VendPhase.REJECTED, amount, step.now, outcome=rejected)
        self.ledger.save(step, record)
        self._release(vend_id)
        step.log(Log.info("vend.rejected", vend_id=vend_id, reason=reason))

    def _current_vend(self, phase: VendPhase) -> VendRecord | None:
        vend = self.ledger.vend(self._current)
        return vend if vend is not None and vend.phase is phase else None

    def _release(self, vend_id: str) -> None:
        if self._current == vend_id:
            self._current = None


def _replace(vend: VendRecord, **changes: Any) -> VendRecord:
    return dataclasses.replace(vend, **changes)


def _money(value: int | None, currency: str) -> Money | None:
    return None if value is None else Money(value, currency)
