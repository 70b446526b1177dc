"""Events the cloud cannot apply: recorded as rejected, alerted, and then acknowledged.

The edge re-sends an event until it is acknowledged, so an event the cloud refuses without an
ack would come back forever (and an edge sending in order would stall behind it). A database
outage is told apart from such a poison event: its event is not acknowledged, so the edge
re-sends it and the database, once back, applies it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exc as db_errors
from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.alerts import AlertKind, raise_alert
from vendgate.cloud.db import (
    ProcessedMessage,
    RejectedEvent,
    SessionFactory,
    VendSession,
    transaction,
)

__all__ = ["Rejection", "describe", "event_key", "is_outage", "reject"]

log = logging.getLogger(__name__)

# Errors that say the database cannot be reached or cannot take work right now (SQLite
# "database is locked", a dropped connection, a full pool): the event itself is fine.
_OUTAGES = (
    db_errors.OperationalError,
    db_errors.InterfaceError,
    db_errors.DisconnectionError,
    db_errors.TimeoutError,
    OSError,
)
# PostgreSQL SQLSTATE classes of the same kind: connection exception, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention, system error.
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})


def event_key(machine_id: str, event_id: str) -> str:
    """The ``processed_messages`` key of an event (and of its ``rejected_events`` row)."""
    return f"evt:{machine_id}:{event_id}"


@dataclass(frozen=True)
class Rejection:
    """An event the cloud acknowledges without applying it, and why."""

    machine_id: str
    message_type: str
    event_id: str
    vend_id: str | None
    reason: str

    @property
    def key(self) -> str:
        return event_key(self.machine_id, self.event_id)

    def row(self, payload: bytes, now: datetime) -> RejectedEvent:
        return RejectedEvent(
            key=self.key,
            machine_id=self.machine_id,
            message_type=self.message_type,
            event_id=self.event_id,
            reason=_storable(self.reason, 1000),
            payload=payload,
            received_at=now,
        )

    def detail(self) -> str:
        return _storable(
            f"{self.message_type} {self.event_id} acknowledged, not applied: {self.reason}", 1000
        )


async def reject(
    sessions: SessionFactory, rejection: Rejection, payload: bytes, now: datetime
) -> bool:
    """Record and alert an unusable event; True when it is on record and may be acknowledged.

    A transaction of its own, after the failed one: if even this fails, the database is what
    is wrong, and the event is left unacknowledged for the edge to re-send.
    """
    try:
        async with transaction(sessions) as db:
            if await db.get(ProcessedMessage, rejection.key) is not None:
                log.info("duplicate event %s from %s", rejection.event_id, rejection.machine_id)
                return True
            db.add(ProcessedMessage(key=rejection.key, received_at=now))
            db.add(rejection.row(payload, now))
            # The alert's log line is the one line this rejection logs.
            raise_alert(
                db,
                AlertKind.EVENT_REJECTED,
                now,
                rejection.detail(),
                machine_id=rejection.machine_id,
                vend_id=await _own_vend(db, rejection.machine_id, rejection.vend_id),
            )
    except db_errors.IntegrityError:
        # Another replica recorded the same event id in the meantime: it is handled.
        log.info("event %s from %s handled elsewhere", rejection.event_id, rejection.machine_id)
    except Exception as error:
        log.error(
            "%s %s from %s could not be applied nor recorded as rejected (%s); "
            "not acknowledged, the edge will re-send it",
            rejection.message_type,
            rejection.event_id,
            rejection.machine_id,
            describe(error),
        )
        return False
    return True


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the database is unavailable, rather than the event unusable."""
    if isinstance(error, _OUTAGES):
        return True
    if isinstance(error, db_errors.DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = getattr(error.orig, "sqlstate", None)
        return isinstance(sqlstate, str) and sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES
    return False


def describe(error: BaseException) -> str:
    """One line: the driver's own message rather than SQLAlchemy's (which quotes the SQL)."""
    if isinstance(error, db_errors.DBAPIError) and error.orig is not None:
        error = error.orig
    return f"{type(error).__name__}: {error}".splitlines()[0]


async def _own_vend(db: AsyncSession, machine_id: str, vend_id: str | None) -> str | None:
    """``vend_id`` if it names a session of this machine (the alert may point at it)."""
    if vend_id is None:
        return None
    vend = await db.get(VendSession, vend_id)
    return vend_id if vend is not None and vend.machine_id == machine_id else None


def _storable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, without the NUL that PostgreSQL text refuses."""
    return text.replace("\x00", "\\x00")[:limit]
