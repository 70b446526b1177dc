"""A throwaway PostgreSQL database, created for one test run and dropped after it.

The server comes from ``VENDGATE_TEST_POSTGRES`` (an admin URL; default: the local server on
127.0.0.1:5432 as user postgres, trust auth). Tests get the SQLAlchemy async URL of a fresh
database named ``vendgate_test_<random>``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from urllib.parse import urlsplit, urlunsplit

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("VENDGATE_TEST_POSTGRES", DEFAULT_ADMIN_URL)


def with_database(url: str, database: str, scheme: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}", scheme=scheme or parts.scheme))


async def _execute(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database() -> tuple[str, str]:
    """Create a fresh database; return (its name, its SQLAlchemy asyncpg URL)."""
    name = f"vendgate_test_{secrets.token_hex(4)}"
    asyncio.run(_execute(admin_url(), f'CREATE DATABASE "{name}"'))
    return name, with_database(admin_url(), name, scheme="postgresql+asyncpg")


def drop_database(name: str) -> None:
    asyncio.run(_execute(admin_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
