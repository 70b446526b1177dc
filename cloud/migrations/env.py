"""Alembic environment: migrations run on a connection the caller hands over.

``vendgate cloud migrate`` and the app's start both go through ``db.migrate.upgrade_to_head``,
which opens the connection (async engine) and passes it in ``config.attributes``. The plain
``alembic`` command works too (for ``revision --autogenerate``) with ``sqlalchemy.url`` set.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlmodel import SQLModel

from vendgate.cloud.db import models  # noqa: F401  (registers the tables on the metadata)

target_metadata = SQLModel.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    # Offline tooling: a synchronous URL (sqlite:///..., postgresql://...).
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "set sqlalchemy.url or pass a connection"
    with create_engine(url).connect() as own_connection:
        run_on(own_connection)
        own_connection.commit()


run()
