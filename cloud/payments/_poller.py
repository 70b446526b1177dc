"""What a payment's state, read from Vipps (poll) or told by a webhook, means for its session."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.db import Payment as PaymentRow
from vendgate.cloud.db import VendSession
from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vends import authorize, fail_payment, schedule
from vendgate.cloud.vipps import Payment
from vendgate.protocol.mqtt import TopicTree

from ._calls import FINAL_FAILURES

log = logging.getLogger(__name__)


def apply_payment_state(
    db: AsyncSession,
    tree: TopicTree,
    vend: VendSession,
    row: PaymentRow,
    state: str,
    authorized_amount: int,
    now: datetime,
    timing: TimingSettings,
    source: str,
) -> bool:
    """AUTHORIZED unlocks the machine; a final failure closes the session. True if it moved."""
    if state == "AUTHORIZED":
        return authorize(db, tree, vend, row, authorized_amount, now, timing, source)
    if state in FINAL_FAILURES:
        return fail_payment(db, vend, row, state, now)
    return False


def apply_poll(
    db: AsyncSession,
    tree: TopicTree,
    vend: VendSession,
    row: PaymentRow,
    polled: Payment,
    now: datetime,
    timing: TimingSettings,
) -> None:
    """A poll result: move on if final, else look again in ``poll_interval`` seconds."""
    authorized = polled.aggregate.authorized_amount.value
    if not apply_payment_state(db, tree, vend, row, polled.state, authorized, now, timing, "poll"):
        row.state = polled.state
        row.next_poll_at = now + timedelta(seconds=timing.poll_interval)
        schedule(vend, row, timing)
    row.updated_at = now
    db.add(row)
    db.add(vend)
