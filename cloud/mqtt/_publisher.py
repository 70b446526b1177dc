"""Publishes the command outbox: claim unpublished rows, send them, put back any that failed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sqlmodel import col, select

from vendgate.cloud.context import CloudContext
from vendgate.cloud.db import OutboxCommand, transaction

from ._link import MqttLink, NotConnected

log = logging.getLogger(__name__)

BATCH = 50
IDLE_INTERVAL = 1.0


async def claim_unpublished(ctx: CloudContext) -> Sequence[OutboxCommand]:
    """Mark a batch as published (claimed) before sending, so replicas do not double up."""
    query = (
        select(OutboxCommand)
        .where(col(OutboxCommand.published_at).is_(None))
        .order_by(col(OutboxCommand.created_at))
        .limit(BATCH)
    )
    if ctx.postgres:
        query = query.with_for_update(skip_locked=True)
    now = ctx.clock()
    async with transaction(ctx.sessions) as db:
        rows = (await db.exec(query)).all()
        for row in rows:
            row.published_at = now
            db.add(row)
        return rows


async def put_back(ctx: CloudContext, command_ids: Sequence[str]) -> None:
    async with transaction(ctx.sessions) as db:
        for command_id in command_ids:
            row = await db.get(OutboxCommand, command_id)
            if row is not None:
                row.published_at = None
                db.add(row)


async def publish_outbox(ctx: CloudContext, link: MqttLink) -> int:
    rows = await claim_unpublished(ctx)
    for index, row in enumerate(rows):
        try:
            await link.publish(row.topic, row.payload)
        except NotConnected:
            await put_back(ctx, [r.id for r in rows[index:]])
            return index
    return len(rows)


async def run_publisher(ctx: CloudContext, link: MqttLink) -> None:
    while True:
        await link.connected.wait()
        ctx.outbox_signal.clear()  # before publishing: a kick during it is not lost
        try:
            while await publish_outbox(ctx, link) == BATCH:
                pass
        except Exception:
            log.exception("outbox publishing failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.outbox_signal.wait(), IDLE_INTERVAL)
