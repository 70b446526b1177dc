"""Recording a message as handled, in one round trip."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from .models import ProcessedMessage

_PROCESSED = ProcessedMessage.metadata.tables["processed_messages"]


async def first_time(db: AsyncSession, key: str, now: datetime) -> bool:
    """Record ``key`` in ``processed_messages``; False if it was there already.

    ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL, SQLite 3.35+): one round trip
    instead of a look and an insert, and two replicas racing on one key cannot both win.
    """
    insert = postgres_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    query = (
        insert(_PROCESSED)
        .values(key=key, received_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(_PROCESSED.c.key)
    )
    connection = await db.connection()
    return (await connection.execute(query)).first() is not None
