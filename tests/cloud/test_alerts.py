"""Alerts are rows written in the caller's transaction, listed in order, filterable."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from vendgate.cloud.alerts import AlertKind, alerts_of, raise_alert
from vendgate.cloud.db import create_engine, session_factory, transaction, upgrade_to_head


async def test_an_alert_is_kept_with_its_session_and_listed_in_order(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/cloud.db")
    await upgrade_to_head(engine)
    sessions = session_factory(engine)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    try:
        async with transaction(sessions) as db:
            raise_alert(db, AlertKind.PRICE_MISMATCH, now, "x" * 2000, machine_id="m1")
            raise_alert(db, AlertKind.SETTLEMENT_STUCK, now, "stuck", vend_id="vs-1")
        async with transaction(sessions) as db:
            every = await alerts_of(db)
            stuck = await alerts_of(db, kind=AlertKind.SETTLEMENT_STUCK)
            of_vend = await alerts_of(db, vend_id="vs-1")
        assert [a.kind for a in every] == ["price_mismatch", "settlement_stuck"]
        assert len(every[0].detail) == 1000
        assert every[0].machine_id == "m1"
        assert [a.detail for a in stuck] == ["stuck"] == [a.detail for a in of_vend]
    finally:
        await engine.dispose()
