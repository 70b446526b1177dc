"""The database layer: migrations, the one-open-session rule, claims, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flow_support import FAST, PLANOGRAM, sqlite_url
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from support.postgres import create_database, drop_database

from vendgate.cloud.db import (
    ONE_OPEN_VEND_INDEX,
    Machine,
    OutboxCommand,
    Payment,
    VendSession,
    create_engine,
    is_postgres,
    session_factory,
    transaction,
    upgrade_to_head,
)
from vendgate.cloud.machines import MachineSpec, upsert_machine
from vendgate.cloud.reconciler import Reconciler
from vendgate.cloud.settings import CloudSettings
from vendgate.cloud.vends import VendService, VendState, VippsExecutor, open_vend
from vendgate.cloud.vipps import VippsClient
from vendgate.protocol import ManualClock
from vendgate.protocol.mqtt import Config, TopicTree

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    name, url = create_database()
    yield url
    drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    url: str = request.getfixturevalue("fresh_postgres")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    await upgrade_to_head(engine)  # a second run (another replica, a restart) changes nothing
    yield engine
    await engine.dispose()


async def machine(engine: AsyncEngine, machine_id: str = "m1") -> Machine:
    async with transaction(session_factory(engine)) as db:
        return await upsert_machine(db, MachineSpec(machine_id, "Lobby", PLANOGRAM), NOW)


async def test_migrations_create_every_table(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        indexes = await connection.run_sync(
            lambda c: {i["name"] for i in inspect(c).get_indexes("vend_sessions")}
        )
    assert {"machines", "slots", "vend_sessions", "payments", "outbox_commands"} <= tables
    assert {"processed_messages", "vend_steps", "vend_lines", "alembic_version"} <= tables
    assert ONE_OPEN_VEND_INDEX in indexes


async def test_the_database_allows_one_open_session_per_machine(engine: AsyncEngine) -> None:
    m1 = await machine(engine)
    sessions = session_factory(engine)
    on_sale = [(1, "Cola", 3500, 0)]

    async def open_one() -> str:
        async with transaction(sessions) as db:
            return await open_vend(db, m1.id, m1.currency, on_sale, NOW, FAST)

    first = await open_one()
    with pytest.raises(IntegrityError):
        await open_one()
    async with transaction(sessions) as db:
        vend = await db.get(VendSession, first)
        assert vend is not None
        assert (vend.state, vend.max_amount) == (VendState.CREATING, 3500)
        vend.state, vend.is_open = VendState.CLOSED, False  # as a refused payment leaves it
        db.add(vend)
    second = await open_one()  # closed: the machine takes a new one
    async with transaction(sessions) as db:
        reopened = await db.get(VendSession, second)
        payment = await db.get(Payment, second)
    assert reopened is not None
    assert reopened.state == VendState.CREATING
    assert payment is not None
    assert (payment.amount, payment.state) == (3500, None)


def reconciler(engine: AsyncEngine) -> Reconciler:
    """One replica's reconciler, to claim with (its vend service is never called here)."""
    sessions, clock, timing = (
        session_factory(engine),
        ManualClock(NOW),
        replace(FAST, work_lease=60),
    )
    executor = VippsExecutor(VippsClient.__new__(VippsClient), CloudSettings())
    vends = VendService(sessions, executor, clock=clock, timing=timing, tree=TopicTree())
    wake = asyncio.Event()
    return Reconciler(
        vends, sessions, wake, clock=clock, timing=timing, postgres=is_postgres(engine)
    )


async def test_concurrent_claims_never_share_a_session(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    for index in range(1, 7):
        m = await machine(engine, f"m{index}")
        async with transaction(sessions) as db:
            vend_id = await open_vend(
                db, m.id, m.currency, [(1, "Cola", 3500, 0)], NOW - timedelta(minutes=5), FAST
            )
            vend = await db.get(VendSession, vend_id)
            assert vend is not None
            vend.lease_until = None
            db.add(vend)
    first, second = reconciler(engine), reconciler(engine)
    claims = await asyncio.gather(first.claim_due(NOW, 4), second.claim_due(NOW, 4))
    together = claims[0] + claims[1]
    assert len(together) == len(set(together)) == 6
    assert await first.claim_due(NOW, 10) == []  # all leased now


def test_cli_migrate_and_add_machine(tmp_path: Path) -> None:
    env = {**os.environ, "VENDGATE_DATABASE_URL": sqlite_url(tmp_path)}
    vendgate = [sys.executable, "-m", "vendgate", "cloud"]
    migrated = subprocess.run([*vendgate, "migrate"], env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    added = subprocess.run(
        [*vendgate, "add-machine", "m7", "Gym", "--slot", "11:Water:2000:1500"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert added.returncode == 0, added.stderr
    assert "machine m7 created with 1 slots" in added.stdout
    bad = subprocess.run(
        [*vendgate, "add-machine", "m7", "Gym", "--slot", "eleven"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2


def test_cli_add_machine_sets_the_price_mode_and_vat_and_queues_the_planogram(
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path)
    env = {**os.environ, "VENDGATE_DATABASE_URL": url, "VENDGATE_MQTT_PREFIX": "site/v1"}
    add = [sys.executable, "-m", "vendgate", "cloud", "add-machine", "m8", "Gym"]
    flags = ["--slot", "11:Water:2000:1500", "--price-mode", "vmc", "--vat", "1200"]
    added = subprocess.run([*add, *flags], env=env, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    bad_mode = subprocess.run(
        [*add, "--price-mode", "cheap"], env=env, capture_output=True, text=True
    )
    bad_vat = subprocess.run([*add, "--vat", "25%"], env=env, capture_output=True, text=True)

    async def read() -> tuple[Machine | None, list[OutboxCommand]]:
        engine = create_engine(url)
        try:
            async with transaction(session_factory(engine)) as db:
                machine = await db.get(Machine, "m8")
                return machine, list((await db.exec(select(OutboxCommand))).all())
        finally:
            await engine.dispose()

    machine, commands = asyncio.run(read())
    assert machine is not None
    assert (machine.price_mode, machine.vat_rate) == ("vmc", 1200)
    (config,) = commands
    assert config.topic == "site/v1/m8/cmd/config"
    assert Config.decode(config.payload).settings == {
        "planogram": [{"item": 11, "price": 2000}],
        "price_mode": "vmc",
    }
    for bad in (bad_mode, bad_vat):
        assert bad.returncode == 2
        assert "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()[-1]) > 0
