"""The agent's durable store: the SQLite outbox and the in-memory one the core tests use.

The same contract runs against both; the SQLite-only tests reopen the file, kill a process
mid-way and check the durability settings.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vendgate.edge import MemoryStore, SqliteStore, Store
from vendgate.edge.core import Approval, Commit, OutboxEvent, VendPhase, VendRecord
from vendgate.protocol import Money
from vendgate.protocol.mqtt import DispensedItem

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def event(seq: int, vend_id: str = "v1", name: str = "evt/dispensed") -> OutboxEvent:
    return OutboxEvent(
        id=f"e{seq}",
        seq=seq,
        name=name,
        vend_id=vend_id,
        payload=f'{{"seq":{seq}}}'.encode(),
        created=T0 + timedelta(seconds=seq),
    )


def vend(vend_id: str, phase: VendPhase, updated: datetime = T0) -> VendRecord:
    return VendRecord(
        vend_id=vend_id,
        phase=phase,
        amount=Money(2500, "NOK"),
        updated=updated,
        lines=(DispensedItem(item=3, price=Money(2000, "NOK"), success=True),),
        in_flight=Approval(4, Money(300, "NOK")),
        outcome=event(9, vend_id, "evt/started"),
    )


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "s.db")
    yield opened
    opened.close()


def test_a_fresh_store_is_empty(store: Store) -> None:
    snapshot = store.load()

    assert (snapshot.pending, snapshot.vends, snapshot.last_seq, snapshot.boots) == ((), (), 0, 0)


def test_events_come_back_in_seq_order_whatever_the_commit_order(store: Store) -> None:
    store.commit(Commit(events=(event(3),)))
    store.commit(Commit(events=(event(1), event(2))))

    assert [e.seq for e in store.load().pending] == [1, 2, 3]


def test_events_come_back_byte_for_byte(store: Store) -> None:
    original = event(1)
    store.commit(Commit(events=(original,)))

    assert store.load().pending == (original,)


def test_ack_removes_only_the_named_events(store: Store) -> None:
    store.commit(Commit(events=(event(1), event(2), event(3))))

    store.commit(Commit(acked=("e1", "e3", "unknown")))

    assert [e.id for e in store.load().pending] == ["e2"]


def test_vend_records_round_trip_and_upsert(store: Store) -> None:
    store.commit(Commit(vends=(vend("v1", VendPhase.OPEN),)))
    latest = vend("v1", VendPhase.ENDED, T0 + timedelta(minutes=1))

    store.commit(Commit(vends=(latest,)))

    assert store.load().vends == (latest,)


def test_counters_settings_and_boots_are_kept(store: Store) -> None:
    store.commit(Commit(last_seq=41, boot_id="b1", settings={"selection_timeout_s": 30.0}))
    store.commit(Commit(last_seq=42, boot_id="b2"))

    snapshot = store.load()

    assert (snapshot.last_seq, snapshot.boots) == (42, 2)
    assert snapshot.settings == {"selection_timeout_s": 30.0}


def test_forgetting_old_vends_keeps_active_and_recent_ones(store: Store) -> None:
    old = T0 - timedelta(days=30)
    store.commit(
        Commit(
            vends=(
                vend("old-ended", VendPhase.ENDED, old),
                vend("old-rejected", VendPhase.REJECTED, old),
                vend("old-open", VendPhase.OPEN, old),
                vend("recent", VendPhase.ENDED, T0),
            )
        )
    )

    assert store.forget_vends(T0 - timedelta(days=7)) == 2

    assert sorted(v.vend_id for v in store.load().vends) == ["old-open", "recent"]


# -- SQLite only ------------------------------------------------------------------------------


def test_everything_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first = SqliteStore(path)
    first.commit(Commit(events=(event(1), event(2)), vends=(vend("v1", VendPhase.OPEN),)))
    first.commit(Commit(acked=("e1",), last_seq=2))
    first.close()

    reopened = SqliteStore(path).load()

    assert [e.id for e in reopened.pending] == ["e2"]
    assert reopened.vends == (vend("v1", VendPhase.OPEN),)
    assert reopened.last_seq == 2


def test_a_failing_commit_changes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "outbox.db")
    store.commit(Commit(events=(event(1),)))
    clash = OutboxEvent("other-id", 1, "evt/ended", "v1", b"{}", T0)  # seq 1 is taken

    with pytest.raises(sqlite3.IntegrityError):
        store.commit(Commit(events=(event(2), clash), last_seq=2))

    snapshot = store.load()
    assert [e.id for e in snapshot.pending] == ["e1"]
    assert snapshot.last_seq == 0


def test_the_journal_is_wal_and_commits_are_fsynced(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "outbox.db")

    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # 2 = FULL


def test_a_file_from_a_newer_agent_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")

    with pytest.raises(RuntimeError, match="newer agent"):
        SqliteStore(path)


def test_a_commit_survives_the_process_being_killed_right_after_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    script = textwrap.dedent(
        f"""
        import os
        from datetime import datetime, UTC
        from pathlib import Path
        from vendgate.edge import SqliteStore
        from vendgate.edge.core import Commit, OutboxEvent

        store = SqliteStore(Path({str(path)!r}))
        created = datetime(2024, 5, 1, tzinfo=UTC)
        store.commit(Commit(events=(OutboxEvent("e7", 7, "evt/ended", "v1", b"{{}}", created),)))
        os._exit(137)  # no close, no atexit: as if SIGKILLed before publishing
        """
    )

    result = subprocess.run([sys.executable, "-c", script], check=False)

    assert result.returncode == 137
    assert [e.id for e in SqliteStore(path).load().pending] == ["e7"]
