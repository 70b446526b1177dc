"""The async engine and sessions: SQLite (WAL, busy timeout, BEGIN IMMEDIATE) or PostgreSQL.

SQLite allows one writer at a time. A transaction that reads first and writes later can fail
outright ("database is locked", no waiting) when another connection wrote in between, so every
SQLite transaction here starts with ``BEGIN IMMEDIATE``: it takes the write lock up front and
waits (busy timeout) instead. Transactions are kept short; none spans an HTTP call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 30_000
POOL_RECYCLE_S = 1800

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(url: str) -> AsyncEngine:
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    # No pre-ping (a round trip on every checkout): connections are recycled before servers or
    # proxies drop idle ones, and one that died anyway fails its transaction once, which every
    # caller already treats as "try again" (the reconciler's next pass, an unacked event).
    # The pool holds the reconciler's concurrency plus the requests and events beside it.
    return create_async_engine(url, pool_recycle=POOL_RECYCLE_S, pool_size=20, max_overflow=20)


def _sqlite_engine(url: str) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


@asynccontextmanager
async def transaction(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One short transaction: commits on success, rolls back on any exception.

    The session is closed in a task of its own (``shield``): a request cancelled in the middle
    (client gone, anyio cancel scope) would otherwise be cancelled again inside its own
    rollback, and on SQLite a connection left in ``BEGIN IMMEDIATE`` holds the one write lock.
    """
    db = sessions()
    try:
        async with db.begin():
            yield db
    finally:
        await asyncio.shield(db.close())
