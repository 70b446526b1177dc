"""Vend session rules applied to the database: open, authorize, edge events, settle, close.

Every function works inside the caller's transaction and changes nothing it should not: an
input the state machine ignores (a duplicate, a late or reordered message) returns False and
leaves the rows alone. Commands for the machine go to the outbox in the same transaction.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.alerts import AlertKind, alerts_of, raise_alert
from vendgate.cloud.db import Machine, Payment, Slot, VendLine, VendSession, VendStep
from vendgate.cloud.outbox import enqueue
from vendgate.cloud.settings import TimingSettings
from vendgate.protocol import Money
from vendgate.protocol.mqtt import Authorized, Cancel, TopicTree

from ._schedule import schedule
from ._settlement import Line, PriceMode, Pricing, Settlement, decide_settlement
from ._states import VendInput, VendState, is_open, next_state

log = logging.getLogger(__name__)


def new_vend_id() -> str:
    """35 characters of ``[a-z0-9-]``: also the Vipps reference (8-50 characters)."""
    return f"vs-{uuid.uuid4().hex}"


def idempotency_key(vend_id: str, operation: str) -> str:
    """The Idempotency-Key of one Vipps operation of a session (at most 50 characters)."""
    key = f"{vend_id}-{operation}"
    assert len(key) <= 50, key
    return key


def log_step(
    db: AsyncSession, vend: VendSession, step: str, now: datetime, detail: str = ""
) -> None:
    db.add(VendStep(vend_id=vend.id, at=now, step=step, detail=detail[:500]))


def move(
    db: AsyncSession, vend: VendSession, event: VendInput, now: datetime, detail: str = ""
) -> bool:
    """Apply ``event`` if the state machine allows it; log the step either way."""
    current = VendState(vend.state)
    target = next_state(current, event)
    if target is None:
        log.info("vend %s: %s ignored in state %s", vend.id, event, current)
        return False
    vend.state, vend.is_open, vend.updated_at = target, is_open(target), now
    if target is VendState.CLOSED:
        vend.closed_at = now
    # The vend id is also the Vipps reference: one line ties the machine, the payment and
    # the step together for whoever reads the log.
    log.info(
        "vend %s machine %s: %s -> %s on %s%s",
        vend.id,
        vend.machine_id,
        current,
        target,
        event,
        f" ({detail})" if detail else "",
    )
    log_step(db, vend, event, now, detail)
    db.add(vend)
    return True


async def open_vend(
    db: AsyncSession,
    machine: Machine,
    max_price: int,
    now: datetime,
    timing: TimingSettings,
    *,
    mode: str = "redirect",
    customer_token: str | None = None,
) -> VendSession:
    """A new session in `creating`, claimed by the caller (it creates the payment next).

    The flush raises IntegrityError if the machine already has an open session.
    """
    vend = VendSession(
        id=new_vend_id(),
        machine_id=machine.id,
        state=VendState.CREATING,
        mode=mode,
        status_token=secrets.token_urlsafe(24),
        currency=machine.currency,
        max_amount=max_price,
        created_at=now,
        updated_at=now,
        due_at=now,
        lease_until=now + timedelta(seconds=timing.work_lease),
    )
    db.add(vend)
    await db.flush()
    payment = Payment(
        reference=vend.id,
        vend_id=vend.id,
        amount=max_price,
        currency=machine.currency,
        customer_token=customer_token,
        updated_at=now,
    )
    db.add(payment)
    log_step(db, vend, "opened", now, f"{mode}, max {Money(max_price, machine.currency)}")
    return vend


def authorize(
    db: AsyncSession,
    tree: TopicTree,
    vend: VendSession,
    payment: Payment,
    amount: int,
    now: datetime,
    timing: TimingSettings,
    source: str,
) -> bool:
    """The customer approved: record it, then put the `authorized` command in the outbox."""
    if not move(db, vend, VendInput.PAYMENT_AUTHORIZED, now, f"{amount} via {source}"):
        return False
    payment.state, payment.authorized, payment.updated_at = "AUTHORIZED", amount, now
    payment.next_poll_at = None
    vend.authorized_amount, vend.authorized_at = amount, now
    vend.settle_by = now + timedelta(seconds=timing.settle_deadline)
    command = Authorized.create(
        now=now,
        vend_id=vend.id,
        amount=Money(amount, vend.currency),
        expires_at=now + timedelta(seconds=timing.authorized_ttl),
    )
    vend.command_id, vend.command_expires_at, vend.command_sent_at = (
        command.id,
        command.expires_at,
        now,
    )
    enqueue(db, tree, vend.machine_id, command, now)
    db.add(payment)
    schedule(vend, payment, timing)
    return True


def fail_payment(
    db: AsyncSession, vend: VendSession, payment: Payment, vipps_state: str, now: datetime
) -> bool:
    """Aborted, expired, terminated or refused: nothing was reserved, nothing to settle."""
    if not move(db, vend, VendInput.PAYMENT_FAILED, now, vipps_state):
        return False
    payment.state, payment.next_poll_at, payment.updated_at = vipps_state, None, now
    vend.outcome, vend.due_at = f"payment_{vipps_state.lower()}", None
    db.add(payment)
    return True


async def lines_of(db: AsyncSession, vend: VendSession) -> list[Line]:
    """The attempts reported so far; stored lines are all in the session's currency."""
    query = select(VendLine).where(VendLine.vend_id == vend.id).order_by(col(VendLine.position))
    rows: Sequence[VendLine] = (await db.exec(query)).all()
    return [Line(r.item, Money(r.price, vend.currency), r.success) for r in rows]


async def pricing_of(db: AsyncSession, machine_id: str) -> Pricing:
    """The machine's price authority: its price mode and planogram as they are now."""
    machine = await db.get(Machine, machine_id)
    slots = (await db.exec(select(Slot).where(Slot.machine_id == machine_id))).all()
    mode = PriceMode(machine.price_mode) if machine is not None else PriceMode.PLANOGRAM
    return Pricing(mode, {slot.item: slot.price for slot in slots})


async def add_line(db: AsyncSession, vend: VendSession, reported: Line, now: datetime) -> None:
    """A `dispensed` report, priced by the planogram and kept for the status page and for a
    settlement by deadline; a price that disagrees with the planogram is alerted."""
    if reported.price.currency != vend.currency:
        log.warning(
            "vend %s: item %s priced in %s, not charged",
            vend.id,
            reported.item,
            reported.price.currency,
        )
        return
    count = len((await db.exec(select(VendLine.id).where(VendLine.vend_id == vend.id))).all())
    priced = (await pricing_of(db, vend.machine_id)).charge(reported)
    if priced.mismatch is not None:
        _price_mismatch(db, vend, priced.mismatch, now)
    db.add(_row(vend, count, priced.line))


async def replace_lines(
    db: AsyncSession, vend: VendSession, reported: Iterable[Line], now: datetime
) -> list[Line]:
    """`ended` lists every attempt: it replaces the `dispensed` reports seen so far. Returns
    the lines as charged (priced by the planogram). A mismatch the `dispensed` report of the
    same line already alerted is not alerted again."""
    await db.exec(delete(VendLine).where(col(VendLine.vend_id) == vend.id))
    pricing = await pricing_of(db, vend.machine_id)
    known = await alerts_of(db, kind=AlertKind.PRICE_MISMATCH, vend_id=vend.id)
    alerted = Counter(alert.detail for alert in known)
    charged: list[Line] = []
    for position, line in enumerate(reported):
        if line.price.currency != vend.currency:
            log.warning("vend %s: line in %s not charged", vend.id, line.price.currency)
            continue
        priced = pricing.charge(line)
        if priced.mismatch is not None:
            # Identical lines have identical details: alert the ones beyond those alerted.
            if alerted[priced.mismatch] > 0:
                alerted[priced.mismatch] -= 1
            else:
                _price_mismatch(db, vend, priced.mismatch, now)
        db.add(_row(vend, position, priced.line))
        charged.append(priced.line)
    return charged


def _row(vend: VendSession, position: int, line: Line) -> VendLine:
    return VendLine(
        vend_id=vend.id,
        position=position,
        item=line.item,
        price=line.price.value,
        success=line.success,
    )


def _price_mismatch(db: AsyncSession, vend: VendSession, detail: str, now: datetime) -> None:
    raise_alert(
        db, AlertKind.PRICE_MISMATCH, now, detail, machine_id=vend.machine_id, vend_id=vend.id
    )
    log_step(db, vend, "price_mismatch", now, detail)


def begin_settling(
    db: AsyncSession, vend: VendSession, lines: Iterable[Line], now: datetime
) -> Settlement:
    """Record the settlement decision; the money steps follow, each recorded on its own."""
    settlement = decide_settlement(Money(vend.authorized_amount, vend.currency), lines)
    vend.capture_amount, vend.cancel_amount = settlement.capture.value, settlement.cancel.value
    vend.due_at = now
    log_step(db, vend, "decided", now, f"capture {settlement.capture}, cancel {settlement.cancel}")
    db.add(vend)
    return settlement


def tell_machine_to_stop(
    db: AsyncSession, tree: TopicTree, vend: VendSession, now: datetime
) -> None:
    enqueue(db, tree, vend.machine_id, Cancel.create(now=now, vend_id=vend.id), now)
