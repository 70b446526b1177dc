"""What a payment's state, read back from Vipps, means for its session.

Only what the cloud reads back (``GET /epayment/v1/payments/{reference}``) moves a session: a
webhook is a hint to look now (``_webhooks``). AUTHORIZED unlocks the machine with at most
what the cloud reserved, in the payment's own currency; anything else is alerted, never used.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.alerts import AlertKind, raise_alert
from vendgate.cloud.db import Payment as PaymentRow
from vendgate.cloud.db import VendSession
from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vends import authorize, fail_payment, schedule
from vendgate.cloud.vipps import Payment
from vendgate.protocol import Money
from vendgate.protocol.mqtt import TopicTree

from ._calls import FINAL_FAILURES

log = logging.getLogger(__name__)


def unlock_amount(polled: Payment, reserved: Money) -> tuple[Money | None, str | None]:
    """What an AUTHORIZED payment may unlock, and what disagrees with our reservation.

    ``min(aggregate.authorizedAmount, reserved)`` when the currencies match; None (unlock
    nothing) when they do not or nothing is authorized.
    """
    authorized = polled.aggregate.authorized_amount
    if authorized.currency != reserved.currency:
        return None, f"authorized in {authorized.currency}, reserved in {reserved.currency}"
    if authorized.value <= 0:
        return None, "AUTHORIZED with nothing authorized"
    problem = None
    if authorized.value > reserved.value:
        problem = f"authorized {authorized.value} is more than the {reserved.value} reserved"
    return Money(min(authorized.value, reserved.value), reserved.currency), problem


def apply_poll(
    db: AsyncSession,
    tree: TopicTree,
    vend: VendSession,
    row: PaymentRow,
    polled: Payment,
    now: datetime,
    timing: TimingSettings,
) -> None:
    """A poll result: unlock, close, or look again in ``poll_interval`` seconds."""
    if polled.state in FINAL_FAILURES:
        moved = fail_payment(db, vend, row, polled.state, now)
    elif polled.state == "AUTHORIZED":
        moved = _unlock(db, tree, vend, row, polled, now, timing)
    else:
        moved = False
    if not moved:
        row.state = polled.state
        row.next_poll_at = now + timedelta(seconds=timing.poll_interval)
        schedule(vend, row, timing)
    row.updated_at = now
    db.add(row)
    db.add(vend)


def _unlock(
    db: AsyncSession,
    tree: TopicTree,
    vend: VendSession,
    row: PaymentRow,
    polled: Payment,
    now: datetime,
    timing: TimingSettings,
) -> bool:
    amount, problem = unlock_amount(polled, Money(row.amount, row.currency))
    if problem is not None:
        detail = f"payment {row.reference}: {problem}"
        raise_alert(
            db,
            AlertKind.PAYMENT_DISAGREES,
            now,
            detail,
            machine_id=vend.machine_id,
            vend_id=vend.id,
        )
    if amount is None:
        return False  # never unlocked; the approval window cancels and releases it
    return authorize(db, tree, vend, row, amount.value, now, timing, "poll")
