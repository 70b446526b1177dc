"""The processes of a cloud benchmark run, each its own so that its CPU is its own (/proc).

- ``mosquitto(folder, machines)``: a real mosquitto from the repo's mosquitto.conf (dynamic
  security), changed only where tests/support/mosquitto.py changes it (port, file paths, what
  Debian's main file adds); the cloud logins and one login per machine are made through
  ``DynsecAccounts``, as the cloud's operator side makes them.
- ``embedded_broker(folder)``: ``vendgate broker`` (amqtt), anonymous, as the embedded tier runs.
- ``database(tier, folder)``: a fresh PostgreSQL database (dropped afterwards) or a SQLite file;
  ``prepare`` migrates it and adds the machines with their planogram.
- ``child(...)``: ``vendgate vipps-sim``, ``vendgate cloud serve`` or the floor app, each a
  subprocess whose first line of output is its URL; its log goes to a file in the run folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench_edge import cpu_seconds, free_port, wait_for_port

from vendgate.cloud.broker import (
    DynsecAccounts,
    hashed_password,
    machine_grants,
    machine_role,
    write_initial_config,
)
from vendgate.cloud.db import create_engine, transaction, upgrade_to_head
from vendgate.cloud.db import session_factory as sessions_of
from vendgate.cloud.machines import MachineSpec, SlotSpec, upsert_machine
from vendgate.protocol.mqtt import DEFAULT_PREFIX

REPO = Path(__file__).resolve().parents[1]
# Mosquitto makes the username the client id: every replica and the admin tool a user of its own.
CLOUD_USERS = ("vendgate-cloud", "vendgate-cloud-2", "vendgate-cloud-3", "vendgate-cloud-4")
ADMIN_USER = "vendgate-admin"
BROKER_PASSWORD = "bench-cloud-secret"
POSTGRES_ENV = "VENDGATE_BENCH_POSTGRES"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
PROVISION_CONCURRENCY = 32
# Up to this many machines get their logins through the plugin's API; beyond, into its file.
PROVISION_BY_API = 500


def machine_password(machine_id: str) -> str:
    return f"{machine_id}-bench-secret"


def box_cpu() -> float:
    """Busy CPU-seconds of the whole box since boot (every core), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class BackendCpu:
    """CPU of the PostgreSQL backends serving one database, from /proc. Backends come and go
    with the pools, so ``run`` looks every 0.5 s and follows each from when it is first seen;
    one that ends between two looks loses at most its last half second."""

    def __init__(self, database: str) -> None:
        self._tag = f" {database} ".encode()
        self._base: dict[int, float] = {}
        self._last: dict[int, float] = {}

    def _look(self, base_now: bool) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes()
                if not title.startswith(b"postgres: ") or self._tag not in title:
                    continue
                cpu = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            if pid not in self._base:
                self._base[pid] = cpu if base_now else 0.0
            self._last[pid] = cpu

    def mark(self) -> None:
        """From now on: what the backends alive now have used so far is not counted."""
        self._base.clear()
        self._last.clear()
        self._look(base_now=True)

    def seconds(self) -> float:
        self._look(base_now=False)
        return sum(self._last[pid] - self._base[pid] for pid in self._last)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self._look(base_now=False)


# -- child processes ----------------------------------------------------------------------------


@dataclass
class Child:
    """A process of the run: its pid (for /proc), its URL, its log file."""

    name: str
    process: asyncio.subprocess.Process
    url: str
    log: Path
    last_cpu: float = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        """CPU-seconds so far (all its threads); the last reading once it has exited."""
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            self.last_cpu = cpu_seconds(self.pid)
        return self.last_cpu

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.cpu()
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the caller's ``VENDGATE_*``, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("VENDGATE_")}
    return {**base, **extra}


async def start_child(
    name: str,
    argv: Sequence[str],
    folder: Path,
    env: Mapping[str, str] | None = None,
    limit: float = 60.0,
) -> Child:
    """Start ``argv``; return once it printed its URL (its first line)."""
    log = folder / f"{name}.log"
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=clean_environment(env or {}),
        )
    child = Child(name, process, "", log)
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), limit)
    except TimeoutError:
        await child.stop()
        raise RuntimeError(
            f"{name} printed no URL within {limit:g} s:\n{child.log_tail()}"
        ) from None
    if not line.strip():
        await child.stop()
        raise RuntimeError(f"{name} exited at start:\n{child.log_tail()}")
    child.url = line.decode().strip()
    return child


def vendgate(*args: str, log_level: str = "WARNING") -> list[str]:
    return [sys.executable, "-m", "vendgate", "--log-level", log_level, *args]


@contextlib.asynccontextmanager
async def children() -> AsyncIterator[list[Child]]:
    """A list to put started children in; all stopped together at the end."""
    started: list[Child] = []
    try:
        yield started
    finally:
        await asyncio.gather(*(one.stop() for one in started))


# -- brokers ----------------------------------------------------------------------------------


@dataclass
class Broker:
    """``host``/``port`` for everyone; logins (``None`` on the anonymous embedded broker)."""

    host: str
    port: int
    description: str
    process: Child
    logins: bool

    def cloud_url(self, replica: int) -> str:
        if not self.logins:
            return f"mqtt://{self.host}:{self.port}"
        return f"mqtt://{CLOUD_USERS[replica]}:{BROKER_PASSWORD}@{self.host}:{self.port}"

    def password(self, machine_id: str) -> str | None:
        return machine_password(machine_id) if self.logins else None


def plugin_path(configured: str) -> str:
    """The dynamic-security plugin at its configured path, else this machine's."""
    if Path(configured).exists():
        return configured
    found = sorted(glob.glob("/usr/lib/*/mosquitto_dynamic_security.so"))
    return found[0] if found else configured


def mosquitto_config(port: int, folder: Path) -> str:
    """The repo's mosquitto.conf with only the port and the file paths moved into ``folder``."""
    source = (REPO / "mosquitto.conf").read_text()
    lines = {
        r"^listener 1883\s*$": f"listener {port} 127.0.0.1",
        r"^plugin (\S+)$": None,  # filled below: it keeps its own path if that exists
        r"^plugin_opt_config_file .*$": f"plugin_opt_config_file {folder / 'dynsec.json'}",
    }
    for pattern, line in lines.items():
        found = re.search(pattern, source, flags=re.MULTILINE)
        if found is None:
            raise RuntimeError(f"mosquitto.conf no longer has a line like {pattern!r}")
        new = line if line is not None else f"plugin {plugin_path(found[1])}"
        source = source[: found.start()] + new + source[found.end() :]
    # What Debian's main mosquitto.conf adds (the repo's file is a conf.d drop-in).
    return source + f"\npersistence_location {folder}/\nlog_dest file {folder / 'mosquitto.log'}\n"


def give_to_mosquitto(path: Path) -> None:
    """mosquitto started as root reads its files as the mosquitto user."""
    if os.geteuid() == 0:
        with contextlib.suppress(LookupError):
            shutil.chown(path, "mosquitto", "mosquitto")


def mosquitto_files(folder: Path, port: int, machines: Sequence[str]) -> tuple[Path, bool]:
    """The config and the plugin's first file; whether the machines' logins are still to be
    added through the API (False: they are in the file already)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)  # mosquitto started as root drops to its own user
    config = folder / "mosquitto.conf"
    config.write_text(mosquitto_config(port, folder))
    config.chmod(0o644)
    dynsec = folder / "dynsec.json"
    write_initial_config(dynsec, CLOUD_USERS[0], BROKER_PASSWORD, DEFAULT_PREFIX)
    by_api = len(machines) <= PROVISION_BY_API
    if not by_api:
        seed_machines(dynsec, machines)
    give_to_mosquitto(dynsec)
    return config, by_api


@contextlib.asynccontextmanager
async def mosquitto(folder: Path, machines: Sequence[str]) -> AsyncIterator[Broker]:
    port = free_port()
    config, by_api = mosquitto_files(folder, port, machines)
    log = folder / "mosquitto.stderr.log"
    with log.open("ab") as stderr:
        process = await asyncio.create_subprocess_exec(
            "mosquitto", "-c", str(config), stdout=stderr, stderr=stderr
        )
    child = Child("mosquitto", process, f"mqtt://127.0.0.1:{port}", log)
    try:
        await wait_for_port(port)
        await provision(port, machines if by_api else ())
        how = "logins added through its API" if by_api else "logins written into its file"
        description = f"mosquitto (the repo's mosquitto.conf, dynamic security; {how})"
        yield Broker("127.0.0.1", port, description, child, True)
    finally:
        await child.stop()


async def provision(port: int, machines: Sequence[str]) -> None:
    """The cloud replicas' logins and the admin login, then one login per machine as the
    operator API makes them (``DynsecAccounts.add``), several at a time on one connection."""
    first = DynsecAccounts("127.0.0.1", port, username=CLOUD_USERS[0], password=BROKER_PASSWORD)
    async with first as accounts:
        for user in (ADMIN_USER, *CLOUD_USERS[1:]):
            await accounts.add_cloud_user(user, BROKER_PASSWORD)
    if not machines:
        return
    admin = DynsecAccounts("127.0.0.1", port, username=ADMIN_USER, password=BROKER_PASSWORD)
    gate = asyncio.Semaphore(PROVISION_CONCURRENCY)

    async def add(machine_id: str) -> None:
        async with gate:
            await accounts.add(machine_id, machine_password(machine_id))

    async with admin as accounts:
        await asyncio.gather(*(add(machine_id) for machine_id in machines))


def seed_machines(dynsec: Path, machines: Sequence[str]) -> None:
    """The plugin's file as ``DynsecAccounts.add`` would leave it for ``machines``: a client
    and a role of its own each. The plugin rewrites its whole file after every change, so adding
    thousands through the API costs O(n²) (1,000 took 23 s of broker CPU)."""
    document = json.loads(dynsec.read_text())
    for machine_id in machines:
        grants = [grant.as_dynsec() for grant in machine_grants(machine_id, DEFAULT_PREFIX)]
        document["roles"].append({"rolename": machine_role(machine_id), "acls": grants})
        document["clients"].append(
            {
                "username": machine_id,
                **hashed_password(machine_password(machine_id)),
                "roles": [{"rolename": machine_role(machine_id)}],
            }
        )
    dynsec.write_text(json.dumps(document))


@contextlib.asynccontextmanager
async def embedded_broker(folder: Path) -> AsyncIterator[Broker]:
    child = await start_child("amqtt", vendgate("broker", "--port", "0"), folder)
    try:
        parts = urlsplit(child.url)
        yield Broker(
            parts.hostname or "127.0.0.1",
            parts.port or 1883,
            "amqtt (vendgate broker, its own process, anonymous)",
            child,
            False,
        )
    finally:
        await child.stop()


# -- the database -----------------------------------------------------------------------------


@dataclass
class Database:
    """The SQLAlchemy URL the cloud gets; on PostgreSQL its name and the admin DSN too."""

    url: str
    postgres_name: str | None = None
    admin_dsn: str = ""

    @property
    def description(self) -> str:
        return "PostgreSQL" if self.postgres_name else "SQLite (WAL)"

    async def commits(self) -> int | None:
        """``xact_commit`` of this database (None on SQLite): read from another database, so
        that reading it is not counted in it."""
        if self.postgres_name is None:
            return None
        import asyncpg

        connection = await asyncpg.connect(self.admin_dsn, timeout=10)
        try:
            value = await connection.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", self.postgres_name
            )
        finally:
            await connection.close()
        return int(value)

    async def server_version(self) -> str:
        if self.postgres_name is None:
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        import asyncpg

        connection = await asyncpg.connect(self.admin_dsn, timeout=10)
        try:
            version = await connection.fetchval("SHOW server_version")
        finally:
            await connection.close()
        return f"PostgreSQL {str(version).split()[0]}"


def postgres_admin_dsn() -> str:
    return os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES)


def with_database(dsn: str, name: str, scheme: str | None = None) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}", scheme=scheme or parts.scheme))


async def postgres_available() -> str | None:
    """None when the benchmark's PostgreSQL answers, else why not."""
    import asyncpg

    try:
        connection = await asyncpg.connect(postgres_admin_dsn(), timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


@contextlib.asynccontextmanager
async def database(postgres: bool, folder: Path, keep: bool = False) -> AsyncIterator[Database]:
    """SQLite in ``folder``, or a new PostgreSQL database, dropped afterwards unless ``keep``."""
    if not postgres:
        yield Database(f"sqlite+aiosqlite:///{folder / 'bench.db'}")
        return
    import asyncpg

    admin = postgres_admin_dsn()
    name = f"vendgate_bench_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(admin, timeout=10)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    try:
        yield Database(with_database(admin, name, "postgresql+asyncpg"), name, admin)
    finally:
        if keep:
            print(f"  (PostgreSQL database {name} kept)")
        else:
            await drop_database(admin, name)


async def drop_database(admin: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin, timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def prepare(db: Database, machines: Sequence[str], slots: Sequence[SlotSpec]) -> None:
    """Migrate, and add every machine with ``slots`` (as ``vendgate cloud add-machine`` does)."""
    engine = create_engine(db.url)
    try:
        await upgrade_to_head(engine)
        sessions = sessions_of(engine)
        now = datetime.now(UTC)
        for start in range(0, len(machines), 500):
            async with transaction(sessions) as session:
                for machine_id in machines[start : start + 500]:
                    spec = MachineSpec(machine_id, f"Bench {machine_id}", list(slots))
                    await upsert_machine(session, spec, now)
    finally:
        await engine.dispose()


async def wait_until(
    condition: Callable[[], Awaitable[bool]], what: str, limit: float, every: float = 0.1
) -> float:
    """Poll ``await condition()`` until true; the seconds it took."""
    start = time.monotonic()
    while not await condition():
        if time.monotonic() - start > limit:
            raise TimeoutError(f"timed out after {limit:g} s waiting for {what}")
        await asyncio.sleep(every)  # polling another process's state
    return time.monotonic() - start
