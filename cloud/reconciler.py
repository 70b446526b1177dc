"""The reconciler: a background task, safe in every replica, that moves due sessions on.

It finishes whatever a crash interrupted (a settlement half done, a payment created but not
recorded), polls payments whose webhooks did not come, re-sends `authorized` until the
machine answers, settles sessions whose machine never reported by the settle deadline, and
retries receipts. Sessions are claimed with a lease; on PostgreSQL the claim locks the rows
with ``FOR UPDATE SKIP LOCKED``, so replicas never work on the same session at once. The work
itself is the vend service's (``run_claimed``): the reconciler only says "time passed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlmodel import col, or_, select

from vendgate.cloud.db import VendSession, transaction

from .context import CloudContext

log = logging.getLogger(__name__)

CLAIM_BATCH = 20
MAX_ROUNDS = 10


async def claim_due(ctx: CloudContext, now: datetime, limit: int = CLAIM_BATCH) -> list[str]:
    """Lease up to ``limit`` sessions whose next action is due and nobody else holds."""
    query = (
        select(VendSession)
        .where(col(VendSession.due_at) <= now)
        .where(or_(col(VendSession.lease_until).is_(None), col(VendSession.lease_until) < now))
        .order_by(col(VendSession.due_at))
        .limit(limit)
    )
    if ctx.postgres:
        query = query.with_for_update(skip_locked=True)
    lease_until = now + timedelta(seconds=ctx.settings.timing.work_lease)
    async with transaction(ctx.sessions) as db:
        vends = (await db.exec(query)).all()
        for vend in vends:
            vend.lease_until = lease_until
            db.add(vend)
        return [vend.id for vend in vends]


class Reconciler:
    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx

    async def run_once(self) -> int:
        """Work every session due now; returns how many were claimed."""
        worked = 0
        for _ in range(MAX_ROUNDS):
            claimed = await claim_due(self.ctx, self.ctx.clock())
            for vend_id in claimed:
                await self.ctx.vends.run_claimed(vend_id)
            worked += len(claimed)
            if len(claimed) < CLAIM_BATCH:
                break
        return worked

    async def run(self) -> None:
        interval = self.ctx.settings.timing.reconcile_interval
        while True:
            self.ctx.work_signal.clear()  # before the pass: a kick during it is not lost
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not end the loop for good
                log.exception("reconciler pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ctx.work_signal.wait(), interval)
