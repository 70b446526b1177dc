"""Drives one claimed vend session forward: the action due, then the next, until none is due.

Each action is a Vipps call (or none) followed by one short transaction recording its result,
after re-reading the row and checking the step is still owed; so a repeat after a crash, or a
race with an MQTT event or a webhook, changes nothing twice. No transaction spans a call.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud import payments
from vendgate.cloud.alerts import AlertKind, raise_alert
from vendgate.cloud.db import Payment, VendSession, transaction
from vendgate.cloud.faults import AFTER_CAPTURE, AFTER_VIPPS_CALL_BEFORE_COMMIT
from vendgate.cloud.machines import get_machine, slots_of
from vendgate.cloud.outbox import rearm
from vendgate.cloud.vends import (
    ABANDONED,
    Action,
    VendInput,
    VendState,
    approval_deadline,
    begin_settling,
    decide_settlement,
    fail_payment,
    lines_of,
    log_step,
    move,
    next_action,
    receipt_lines,
    schedule,
    tell_machine_to_stop,
)
from vendgate.cloud.vipps import VippsApiError, VippsError
from vendgate.protocol import Money

from .context import CloudContext

log = logging.getLogger(__name__)

# A session needs at most capture, cancel, verify, receipt, close in a row; more is a bug.
MAX_STEPS_PER_CLAIM = 10
# A failed step waits retry_delay, doubled per failure of the session, at most this many times.
MAX_BACKOFF_FACTOR = 64


class SettlementDisagrees(Exception):
    """Vipps' aggregate does not show our decision: retried with back-off like a failed call."""


Snapshot = tuple[VendSession, Payment]


class Progress:
    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.timing = ctx.settings.timing
        self._actions: dict[Action, Callable[[VendSession, Payment], Awaitable[None]]] = {
            Action.CREATE_PAYMENT: self._create_payment,
            Action.POLL: self._poll,
            Action.RESEND_COMMAND: self._resend_command,
            Action.GIVE_UP: self._give_up,
            Action.ABANDON: self._abandon,
            Action.CAPTURE: self._capture,
            Action.CANCEL: self._cancel,
            Action.VERIFY: self._verify,
            Action.RECEIPT: self._receipt,
            Action.CLOSE: self._close,
        }

    async def run_claimed(self, vend_id: str) -> None:
        """Run every action due now; the caller holds the session's lease, released here."""
        try:
            for _ in range(MAX_STEPS_PER_CLAIM):
                if not await self._step(vend_id):
                    return
            log.error("vend %s: still busy after %d steps", vend_id, MAX_STEPS_PER_CLAIM)
        finally:
            await self._release(vend_id)

    async def _release(self, vend_id: str) -> None:
        now = self.ctx.clock()
        async with self._record(vend_id) as (_db, vend, payment):
            vend.lease_until = None
            if next_action(vend, payment, now, self.timing) is None:
                schedule(vend, payment, self.timing)
            if vend.due_at is not None and vend.due_at <= now:
                # Due but nothing to do (it should not happen): look again later, not in a loop.
                vend.due_at = now + timedelta(seconds=self.timing.retry_delay)

    async def _step(self, vend_id: str) -> bool:
        async with transaction(self.ctx.sessions) as db:
            vend = await db.get(VendSession, vend_id)
            payment = await db.get(Payment, vend_id)
        if vend is None or payment is None:
            return False
        action = next_action(vend, payment, self.ctx.clock(), self.timing)
        if action is None:
            return False
        try:
            await self._actions[action](vend, payment)
        except (VippsError, SettlementDisagrees) as exc:
            await self._failed(vend_id, action, exc)
            return False
        return True

    @asynccontextmanager
    async def _record(
        self, vend_id: str
    ) -> AsyncIterator[tuple[AsyncSession, VendSession, Payment]]:
        """One transaction over the freshly read rows of the session."""
        async with transaction(self.ctx.sessions) as db:
            vend = await db.get(VendSession, vend_id)
            payment = await db.get(Payment, vend_id)
            assert vend is not None
            assert payment is not None
            yield db, vend, payment
            db.add(vend)
            db.add(payment)

    async def _failed(self, vend_id: str, action: Action, exc: Exception) -> None:
        now = self.ctx.clock()
        async with self._record(vend_id) as (db, vend, _payment):
            vend.failures += 1
            vend.last_error = f"{action}: {exc}"[:500]
            # Back off, capped: a refusal that lasts must not flood Vipps or the log.
            wait = self.timing.retry_delay * min(2 ** (vend.failures - 1), MAX_BACKOFF_FACTOR)
            vend.due_at = now + timedelta(seconds=wait)
            log_step(db, vend, "failed", now, vend.last_error)
            log.warning(
                "vend %s machine %s: %s failed (try %d, next in %.1f s): %s",
                vend.id,
                vend.machine_id,
                action,
                vend.failures,
                wait,
                exc,
            )
            if vend.failures == int(self.timing.alert_after_failures):
                kind = (
                    AlertKind.SETTLEMENT_STUCK
                    if vend.state == VendState.SETTLING
                    else AlertKind.STEP_FAILING
                )
                detail = f"{exc} ({action}, {vend.failures} tries so far; still retrying)"
                raise_alert(db, kind, now, detail, machine_id=vend.machine_id, vend_id=vend.id)

    # -- payment ---------------------------------------------------------------------------

    async def _create_payment(self, vend: VendSession, payment: Payment) -> None:
        try:
            redirect = await payments.create_payment(
                self.ctx.vipps, vend, payment, self.ctx.settings
            )
        except VippsApiError as exc:
            if exc.retryable:
                raise
            await self._refused(vend.id, exc)
            return
        now = self.ctx.clock()
        async with self._record(vend.id) as (db, vend, payment):
            # Kept even if a webhook already moved the session on: the scan needs the URL.
            payment.redirect_url = payment.redirect_url or redirect
            if not move(db, vend, VendInput.PAYMENT_CREATED, now):
                return
            payment.state, payment.updated_at = "CREATED", now
            payment.next_poll_at = now + timedelta(seconds=self.timing.poll_first)
            schedule(vend, payment, self.timing)

    async def _refused(self, vend_id: str, exc: VippsApiError) -> None:
        log.error("vend %s: Vipps refused the payment: %s", vend_id, exc)
        now = self.ctx.clock()
        async with self._record(vend_id) as (db, vend, payment):
            vend.last_error = str(exc)[:500]
            fail_payment(db, vend, payment, "REFUSED", now)

    async def _poll(self, vend: VendSession, payment: Payment) -> None:
        polled = await payments.fetch(self.ctx.vipps, payment.reference)
        now = self.ctx.clock()
        async with self._record(vend.id) as (db, vend, payment):
            if vend.state != VendState.AWAITING_APPROVAL:
                return
            if now >= approval_deadline(vend, self.timing):
                # The window closed while we asked: abandoning is due, not unlocking.
                schedule(vend, payment, self.timing)
                return
            payments.apply_poll(db, self.ctx.tree, vend, payment, polled, now, self.timing)
        self.ctx.kick_outbox()

    async def _abandon(self, vend: VendSession, payment: Payment) -> None:
        """The customer did not approve in time: cancel the payment, free the machine now."""
        now = self.ctx.clock()
        window = f"not approved within {self.timing.approval_timeout:g} s"
        async with self._record(vend.id) as (db, vend, payment):
            if not move(db, vend, VendInput.APPROVAL_TIMED_OUT, now, window):
                return
            vend.end_reason, vend.ended_at = ABANDONED, now
            vend.capture_amount, vend.cancel_amount = 0, 0
            payment.next_poll_at, vend.due_at = None, now

    # -- the machine -----------------------------------------------------------------------

    async def _resend_command(self, vend: VendSession, payment: Payment) -> None:
        now = self.ctx.clock()
        async with self._record(vend.id) as (db, vend, payment):
            if next_action(vend, payment, now, self.timing) is not Action.RESEND_COMMAND:
                return
            if vend.command_id is not None and await rearm(db, vend.command_id):
                log_step(db, vend, "command_resent", now, vend.command_id)
            vend.command_sent_at = now
            schedule(vend, payment, self.timing)
        self.ctx.kick_outbox()

    async def _give_up(self, vend: VendSession, payment: Payment) -> None:
        now = self.ctx.clock()
        async with self._record(vend.id) as (db, vend, _payment):
            if not move(db, vend, VendInput.DEADLINE_PASSED, now, "machine did not report"):
                return
            begin_settling(db, vend, await lines_of(db, vend), now)
            tell_machine_to_stop(db, self.ctx.tree, vend, now)
        self.ctx.kick_outbox()

    # -- settlement: capture, cancel, verify, receipt, close ---------------------------------

    async def _capture(self, vend: VendSession, payment: Payment) -> None:
        await payments.capture(self.ctx.vipps, vend)
        self.ctx.faults(AFTER_VIPPS_CALL_BEFORE_COMMIT)
        await self._settled_step(
            vend.id, "captured_at", f"{Money(vend.capture_amount or 0, vend.currency)}"
        )
        self.ctx.faults(AFTER_CAPTURE)

    async def _cancel(self, vend: VendSession, payment: Payment) -> None:
        try:
            await payments.cancel(self.ctx.vipps, vend)
        except VippsApiError as exc:
            # An abandoned scan whose create never reached Vipps: nothing exists to release.
            if not (vend.end_reason == ABANDONED and exc.status == 404):
                raise
        await self._settled_step(
            vend.id, "cancelled_at", f"{Money(vend.cancel_amount or 0, vend.currency)}"
        )

    async def _settled_step(self, vend_id: str, field: str, detail: str) -> None:
        now = self.ctx.clock()
        async with self._record(vend_id) as (db, vend, _payment):
            if getattr(vend, field) is None:
                setattr(vend, field, now)
                log_step(db, vend, field.removesuffix("_at"), now, detail)
            vend.due_at = now

    async def _verify(self, vend: VendSession, payment: Payment) -> None:
        try:
            polled = await payments.fetch(self.ctx.vipps, payment.reference)
        except VippsApiError as exc:
            if not (vend.end_reason == ABANDONED and exc.status == 404):
                raise
            polled = None  # never created at Vipps: nothing reserved, nothing to check
        now = self.ctx.clock()
        async with self._record(vend.id) as (db, vend, payment):
            if polled is not None:
                aggregate = polled.aggregate
                payment.state = polled.state
                payment.captured = aggregate.captured_amount.value
                payment.cancelled = aggregate.cancelled_amount.value
                payment.authorized, payment.updated_at = aggregate.authorized_amount.value, now
            if polled is not None and not _agrees(vend, payment):
                raise SettlementDisagrees(
                    f"aggregate captured {payment.captured} + cancelled {payment.cancelled} "
                    f"of {payment.authorized} disagrees with the decision "
                    f"({vend.capture_amount or 0} + {vend.cancel_amount or 0})"
                )
            vend.verified_at, vend.due_at = now, now
            log_step(db, vend, "verified", now, f"{payment.captured}+{payment.cancelled}")
            if vend.end_reason == ABANDONED and payment.authorized > 0:
                vend.cancel_amount = payment.cancelled
                detail = f"approved after the approval window; {payment.cancelled} released"
                raise_alert(
                    db,
                    AlertKind.LATE_APPROVAL,
                    now,
                    detail,
                    machine_id=vend.machine_id,
                    vend_id=vend.id,
                )

    async def _receipt(self, vend: VendSession, payment: Payment) -> None:
        async with transaction(self.ctx.sessions) as db:
            lines = await lines_of(db, vend)
            names = {s.item: (s.name, s.vat_rate) for s in await slots_of(db, vend.machine_id)}
            machine_vat = (await get_machine(db, vend.machine_id)).vat_rate
        charged = decide_settlement(Money(vend.authorized_amount, vend.currency), lines).charged
        receipt = receipt_lines(charged, names, machine_vat)
        await payments.post_receipt(self.ctx.vipps, vend, receipt)
        await self._settled_step(vend.id, "receipt_at", f"{len(charged)} lines")

    async def _close(self, vend: VendSession, payment: Payment) -> None:
        now = self.ctx.clock()
        async with self._record(vend.id) as (db, vend, _payment):
            if move(db, vend, VendInput.SETTLED, now):
                vend.outcome = _outcome(vend)
                vend.due_at = None


def _outcome(vend: VendSession) -> str:
    if vend.end_reason == ABANDONED:
        return ABANDONED
    return "paid" if (vend.capture_amount or 0) > 0 else "not_charged"


def _agrees(vend: VendSession, payment: Payment) -> bool:
    """Vipps' aggregate shows exactly our decision, and nothing is left reserved.

    An abandoned scan decided nothing: it agrees when nothing was captured and nothing is
    left reserved (a payment that ended unapproved, or a late approval released whole).
    """
    if vend.end_reason == ABANDONED:
        if payment.captured != 0:
            return False
        if payment.state in payments.FINAL_FAILURES:
            return True
        return payment.state == "AUTHORIZED" and payment.cancelled == payment.authorized
    return (
        payment.captured == (vend.capture_amount or 0)
        and payment.cancelled == (vend.cancel_amount or 0)
        and payment.captured + payment.cancelled == payment.authorized
    )
