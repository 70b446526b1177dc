"""The cloud's command outbox: a command is a row written in the transaction that decided it.

The MQTT publisher sends unpublished rows and marks them; re-arming a row (published_at back
to NULL) re-sends the same message, with the same id, which the edge ignores if it has it.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.db import OutboxCommand
from vendgate.protocol.mqtt import Command, TopicTree


class Outgoing(NamedTuple):
    """A command row to publish: its id (the message id), topic and payload."""

    id: str
    topic: str
    payload: bytes


def enqueue(
    db: AsyncSession,
    tree: TopicTree,
    machine_id: str,
    command: Command,
    now: datetime,
    *,
    sent_at: datetime | None = None,
) -> OutboxCommand:
    """``sent_at``: the writer publishes the row itself once its transaction commits, so the
    publisher leaves it alone; if the cloud dies before that, the session's re-send timer
    re-arms it (``rearm``)."""
    assert command.topic_name is not None
    row = OutboxCommand(
        id=command.id,
        machine_id=machine_id,
        topic=str(tree.command(machine_id, command.topic_name)),
        payload=command.encode(),
        created_at=now,
        published_at=sent_at,
    )
    db.add(row)
    return row


async def rearm(db: AsyncSession, command_id: str) -> bool:
    row = await db.get(OutboxCommand, command_id)
    if row is None:
        return False
    row.published_at = None
    db.add(row)
    return True
