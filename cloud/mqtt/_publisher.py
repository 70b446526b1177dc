"""Publishes the command outbox: claim unpublished rows, send them, put back any that failed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field

from sqlmodel import col, select

from vendgate.cloud.db import OutboxCommand, SessionFactory, transaction
from vendgate.cloud.outbox import Outgoing
from vendgate.protocol import Clock

from ._link import MqttLink, NotConnected

log = logging.getLogger(__name__)

BATCH = 50
IDLE_INTERVAL = 1.0


@dataclass(frozen=True)
class OutboxPublisher:
    """Sends the outbox over ``link`` whenever it is connected: at once when ``wake`` is set
    (a command was written, the link connected), else every ``IDLE_INTERVAL`` seconds.

    ``postgres``: claim with ``FOR UPDATE SKIP LOCKED``, so replicas never send a row twice.
    """

    sessions: SessionFactory
    link: MqttLink
    wake: asyncio.Event
    _: KW_ONLY
    clock: Clock
    postgres: bool
    _sending: set[asyncio.Task[None]] = field(default_factory=set)

    async def claim_unpublished(self) -> Sequence[OutboxCommand]:
        """Mark a batch as published (claimed) before sending, so replicas do not double up."""
        query = (
            select(OutboxCommand)
            .where(col(OutboxCommand.published_at).is_(None))
            .order_by(col(OutboxCommand.created_at))
            .limit(BATCH)
        )
        if self.postgres:
            query = query.with_for_update(skip_locked=True)
        now = self.clock.now()
        async with transaction(self.sessions) as db:
            rows = (await db.exec(query)).all()
            for row in rows:
                row.published_at = now
                db.add(row)
            return rows

    async def put_back(self, command_ids: Sequence[str]) -> None:
        async with transaction(self.sessions) as db:
            for command_id in command_ids:
                row = await db.get(OutboxCommand, command_id)
                if row is not None:
                    row.published_at = None
                    db.add(row)

    def send(self, commands: Sequence[Outgoing]) -> None:
        """Publish rows their writer marked as published (``enqueue(sent_at=...)``), now, in a
        task of their own; any the link cannot take now go back to the outbox."""
        task = asyncio.ensure_future(self._send(commands))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, commands: Sequence[Outgoing]) -> None:
        for index, command in enumerate(commands):
            try:
                await self.link.publish(command.topic, command.payload)
            except NotConnected:
                await self.put_back([c.id for c in commands[index:]])
                return

    async def publish_batch(self) -> int:
        """Send one claimed batch; how many went out (the rest is put back for later)."""
        rows = await self.claim_unpublished()
        for index, row in enumerate(rows):
            try:
                await self.link.publish(row.topic, row.payload)
            except NotConnected:
                await self.put_back([r.id for r in rows[index:]])
                return index
        return len(rows)

    async def run(self) -> None:
        while True:
            await self.link.connected.wait()
            self.wake.clear()  # before publishing: a kick during it is not lost
            try:
                while await self.publish_batch() == BATCH:
                    pass
            except Exception:
                log.exception("outbox publishing failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), IDLE_INTERVAL)
