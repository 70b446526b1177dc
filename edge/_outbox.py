"""Durable state of the edge agent: the event outbox, vend records, counters and settings.

``Store`` is the small interface the agent needs: ``load()`` on start, ``commit()`` for every
change, both all-or-nothing. ``SqliteStore`` is the real one: WAL journal with
``synchronous=FULL``, so a commit that returned has been fsynced and survives a crash or a
power cut. ``MemoryStore`` keeps the same state in a dict, for tests of the core.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import msgspec

from vendgate.edge._records import Commit, OutboxEvent, Snapshot, VendRecord

__all__ = ["MemoryStore", "SqliteStore", "Store"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    vend_id TEXT,
    name TEXT NOT NULL,
    payload BLOB NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vends (
    vend_id TEXT PRIMARY KEY,
    phase TEXT NOT NULL,
    updated TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store(Protocol):
    """Where the agent's state lives between restarts."""

    def load(self) -> Snapshot: ...

    def commit(self, commit: Commit) -> None:
        """Apply ``commit`` atomically; when this returns it is durable."""

    def forget_vends(self, updated_before: datetime) -> int:
        """Drop finished vend records last changed before the cutoff; return how many."""

    def close(self) -> None: ...


class MemoryStore:
    """The ``Store`` in memory: same semantics, nothing durable (for tests)."""

    def __init__(self) -> None:
        self.events: dict[str, OutboxEvent] = {}
        self.vends: dict[str, VendRecord] = {}
        self.last_seq = 0
        self.settings: dict[str, object] = {}
        self.boots = 0
        self.commits = 0

    def load(self) -> Snapshot:
        pending = tuple(sorted(self.events.values(), key=lambda event: event.seq))
        return Snapshot(
            pending=pending,
            vends=tuple(self.vends.values()),
            last_seq=self.last_seq,
            settings=copy.deepcopy(self.settings),
            boots=self.boots,
        )

    def commit(self, commit: Commit) -> None:
        self.commits += 1
        for event in commit.events:
            self.events[event.id] = event
        for event_id in commit.acked:
            self.events.pop(event_id, None)
        for vend in commit.vends:
            self.vends[vend.vend_id] = vend
        if commit.last_seq is not None:
            self.last_seq = commit.last_seq
        self.settings.update(copy.deepcopy(dict(commit.settings)))
        if commit.boot_id is not None:
            self.boots += 1

    def forget_vends(self, updated_before: datetime) -> int:
        old = [v.vend_id for v in self.vends.values() if _forgettable(v, updated_before)]
        for vend_id in old:
            del self.vends[vend_id]
        return len(old)

    def close(self) -> None:
        pass


def _forgettable(vend: VendRecord, updated_before: datetime) -> bool:
    return not vend.phase.is_active and vend.updated < updated_before


class SqliteStore:
    """The ``Store`` in one SQLite file (WAL, fsync on every commit).

    Not thread-safe: the agent calls it from one worker thread at a time.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: we open transactions ourselves, so a commit is exactly one.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL in WAL mode fsyncs the log on every commit: a returned commit survives power loss.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} was written by a newer agent (schema {version} > {SCHEMA_VERSION})"
            )
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def load(self) -> Snapshot:
        rows = self._db.execute(
            "SELECT id, seq, name, vend_id, payload, created FROM outbox ORDER BY seq"
        ).fetchall()
        pending = tuple(
            OutboxEvent(
                id=row[0],
                seq=row[1],
                name=row[2],
                vend_id=row[3],
                payload=bytes(row[4]),
                created=datetime.fromisoformat(row[5]),
            )
            for row in rows
        )
        vends = tuple(
            msgspec.json.decode(row[0], type=VendRecord)
            for row in self._db.execute("SELECT record FROM vends ORDER BY updated")
        )
        settings = {key: json.loads(value) for key, value in self._db.execute(_ALL_SETTINGS)}
        return Snapshot(
            pending=pending,
            vends=vends,
            last_seq=int(self._meta("last_seq", "0")),
            settings=settings,
            boots=int(self._meta("boots", "0")),
        )

    def _meta(self, key: str, default: str) -> str:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def commit(self, commit: Commit) -> None:
        if commit.is_empty():
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._write(commit)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _write(self, commit: Commit) -> None:
        self._db.executemany(
            # Plain INSERT: an event is written once; OR REPLACE would silently drop another
            # event whose seq clashed.
            "INSERT INTO outbox (id, seq, vend_id, name, payload, created) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                (e.id, e.seq, e.vend_id, e.name, e.payload, _utc_text(e.created))
                for e in commit.events
            ],
        )
        self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in commit.acked])
        self._db.executemany(
            "INSERT OR REPLACE INTO vends (vend_id, phase, updated, record) VALUES (?, ?, ?, ?)",
            [
                (v.vend_id, str(v.phase), _utc_text(v.updated), msgspec.json.encode(v))
                for v in commit.vends
            ],
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
            [(key, json.dumps(value)) for key, value in commit.settings.items()],
        )
        if commit.last_seq is not None:
            self._set_meta("last_seq", str(commit.last_seq))
        if commit.boot_id is not None:
            self._set_meta("boot_id", commit.boot_id)
            self._set_meta("boots", str(int(self._meta("boots", "0")) + 1))

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def forget_vends(self, updated_before: datetime) -> int:
        cursor = self._db.execute(
            "DELETE FROM vends WHERE phase IN ('ended', 'rejected') AND updated < ?",
            (_utc_text(updated_before),),
        )
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()


_ALL_SETTINGS = "SELECT key, value FROM settings"


def _utc_text(moment: datetime) -> str:
    """Fixed-width UTC text, so SQLite orders and compares times as strings correctly."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
