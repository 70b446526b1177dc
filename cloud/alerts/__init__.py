"""Alerts: problems an operator must see, recorded in the transaction that found them.

``raise_alert`` only adds a row (and logs one WARNING line); it never moves money and never
fails the caller's work. The back office lists, acknowledges and forwards them.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from vendgate.cloud.db import Alert

from .kinds import AlertKind

__all__ = ["AlertKind", "alerts_of", "raise_alert"]

log = logging.getLogger(__name__)


def raise_alert(
    db: AsyncSession,
    kind: AlertKind,
    now: datetime,
    detail: str,
    *,
    machine_id: str | None = None,
    vend_id: str | None = None,
) -> Alert:
    alert = Alert(at=now, kind=kind, machine_id=machine_id, vend_id=vend_id, detail=detail[:1000])
    db.add(alert)
    log.warning("alert %s machine=%s vend=%s: %s", kind, machine_id, vend_id, detail)
    return alert


async def alerts_of(
    db: AsyncSession, *, kind: AlertKind | None = None, vend_id: str | None = None
) -> list[Alert]:
    """Alerts in the order raised, optionally of one kind or one vend session."""
    query = select(Alert).order_by(col(Alert.id))
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if vend_id is not None:
        query = query.where(Alert.vend_id == vend_id)
    return list((await db.exec(query)).all())
