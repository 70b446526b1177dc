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
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta

from sqlmodel import col, or_, select

from vendgate.cloud.db import SessionFactory, VendSession, transaction
from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vends import VendService
from vendgate.protocol import Clock

log = logging.getLogger(__name__)

CLAIM_BATCH = 20
MAX_ROUNDS = 10


@dataclass(frozen=True)
class Reconciler:
    """Claims due sessions and has ``vends`` run them: every ``timing.reconcile_interval``, or
    at once when ``wake`` is set (something became due). ``postgres``: claim with ``FOR UPDATE
    SKIP LOCKED``."""

    vends: VendService
    sessions: SessionFactory
    wake: asyncio.Event
    _: KW_ONLY
    clock: Clock
    timing: TimingSettings
    postgres: bool
    # Sessions worked at once by this replica (each a Vipps call and a transaction or two).
    concurrency: int = 16

    async def claim_due(self, now: datetime, limit: int = CLAIM_BATCH) -> list[str]:
        """Lease up to ``limit`` sessions whose next action is due and nobody else holds."""
        query = (
            select(VendSession)
            .where(col(VendSession.due_at) <= now)
            .where(or_(col(VendSession.lease_until).is_(None), col(VendSession.lease_until) < now))
            .order_by(col(VendSession.due_at))
            .limit(limit)
        )
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        lease_until = now + timedelta(seconds=self.timing.work_lease)
        async with transaction(self.sessions) as db:
            vends = (await db.exec(query)).all()
            for vend in vends:
                vend.lease_until = lease_until
                db.add(vend)
            return [vend.id for vend in vends]

    async def run_once(self) -> int:
        """Work every session due now, ``concurrency`` at a time; returns how many were claimed.

        Each session is this replica's alone while it holds the lease, so working several at
        once never puts two workers on one session.
        """
        worked = 0
        batch = max(CLAIM_BATCH, self.concurrency)
        for _ in range(MAX_ROUNDS):
            claimed = await self.claim_due(self.clock.now(), batch)
            await self._work(claimed)
            worked += len(claimed)
            if len(claimed) < batch:
                break
        return worked

    async def _work(self, vend_ids: list[str]) -> None:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(vend_id: str) -> None:
            async with gate:
                try:
                    await self.vends.run_claimed(vend_id)
                except Exception:  # one session's failure must not hold up the others
                    log.exception("vend %s: work failed; retried after its lease", vend_id)

        await asyncio.gather(*(one(vend_id) for vend_id in vend_ids))

    async def run(self) -> None:
        while True:
            self.wake.clear()  # before the pass: a kick during it is not lost
            try:
                await self.run_once()
            except Exception:  # a database hiccup must not end the loop for good
                log.exception("reconciler pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.timing.reconcile_interval)
