"""Reading back the cloud's stored times (the clock itself is ``vendgate.protocol.Clock``)."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes for what we stored as UTC; PostgreSQL returns aware ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
