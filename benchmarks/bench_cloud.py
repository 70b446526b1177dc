"""Cloud benchmark: one ``vendgate cloud serve`` serving an emulated fleet, against a floor.

Not a test: it prints figures. Every part is its own process on this box, over real TCP: the
broker (Mosquitto from the repo's mosquitto.conf with dynamic security and a login per machine,
or the embedded amqtt broker), the database (a fresh PostgreSQL database, or a SQLite file),
``vendgate vipps-sim``, and ``vendgate cloud serve`` (``--replicas`` of them on one database,
each with a broker login of its own and ``$share`` subscriptions). This process is the harness:
the machines (wire format v1 over MQTT, benchmarks/cloud_fleet.py) and their customers, who
scan ``GET /m/{id}``, approve in the simulator, choose an item and wait until the session is
closed in the database. It reports its own CPU, so a saturated harness shows.

In the same run the same load goes to the floor (benchmarks/cloud_floor.py): the same HTTP
calls, Vipps calls, MQTT messages and database commits per purchase, with no business logic,
so ``cloud/floor`` says how far the cloud is from what its stack allows. Each phase starts
from nothing (new broker, database, simulator). At the end of each, the money is read back
from the simulator for every purchase: captured = price, cancelled = reserved - price,
nothing left reserved, one capture.

    .venv/bin/python benchmarks/bench_cloud.py                       # 200 machines, 25/s, 15 s
    .venv/bin/python benchmarks/bench_cloud.py --machines 50 --tier embedded
    .venv/bin/python benchmarks/bench_cloud.py --reconnect-storm 1000
    .venv/bin/python benchmarks/bench_cloud.py --replicas 2
    .venv/bin/python benchmarks/bench_cloud.py --quick               # ~15 s, a smoke run

``VENDGATE_BENCH_POSTGRES`` names the PostgreSQL server (an admin URL; default
postgresql://postgres@127.0.0.1:5432/postgres); each phase creates and drops a database there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cloud_fleet import (
    PRICE,
    SLOTS,
    BrokerLogin,
    Customers,
    Fleet,
    Purchase,
    Settlements,
    as_wall,
    drive,
    quiet_lost_connections,
)
from cloud_stack import (
    BackendCpu,
    Broker,
    Child,
    Database,
    box_cpu,
    children,
    database,
    embedded_broker,
    free_port,
    mosquitto,
    postgres_available,
    prepare,
    start_child,
    vendgate,
    wait_until,
)

from vendgate.cloud.vipps import VippsClient, VippsSettings

HERE = Path(__file__).resolve().parent
PARTS = ("app", "sim", "broker", "db", "harness")  # whose CPU is read
# Commits per purchase the floor makes when the cloud's cannot be counted (SQLite): what this
# benchmark counted for the cloud on PostgreSQL (README, "Measured figures").
DEFAULT_FLOOR_COMMITS = 14
SETUP_LIMIT = 120.0


@dataclass
class Plan:
    tier: str  # "mosquitto" (Mosquitto + PostgreSQL) or "embedded" (amqtt + SQLite)
    machines: int
    rate: float
    duration: float
    think: float
    drain: float
    replicas: int
    storm: int
    phases: tuple[str, ...]  # "cloud", "floor"
    floor_commits: int | None
    vipps_latency: float
    cloud_log_level: str
    seed: int
    keep: bool

    @property
    def postgres(self) -> bool:
        return self.tier == "mosquitto"


# -- one phase's stack ----------------------------------------------------------------------------


@dataclass
class Stack:
    broker: Broker
    db: Database
    sim: Child
    apps: list[Child]
    settlements: Settlements
    fleet: Fleet
    folder: Path
    backends: BackendCpu | None  # PostgreSQL's backends for this database

    def mark(self) -> dict[str, float]:
        """The readings at the start of a measurement."""
        if self.backends:
            self.backends.mark()
        return self.readings()

    def readings(self) -> dict[str, float]:
        """CPU-seconds so far of each part; the database's since ``mark``."""
        return {
            "app": sum(app.cpu() for app in self.apps),
            "sim": self.sim.cpu(),
            "broker": self.broker.process.cpu(),
            "db": self.backends.seconds() if self.backends else 0.0,
            "harness": time.process_time(),
            "box": box_cpu(),
            "wall": time.monotonic(),
        }


def machine_ids(count: int) -> list[str]:
    return [f"bench{index:05d}" for index in range(count)]


@contextlib.asynccontextmanager
async def stack(plan: Plan, app: str, replicas: int, machines: int) -> AsyncIterator[Stack]:
    """Broker, database, simulator, ``replicas`` cloud processes (or the floor), machines
    connected and online in the database, everything quiet."""
    folder = run_folder(app)
    ids = machine_ids(machines)
    try:
        async with contextlib.AsyncExitStack() as stack:
            # Exits in reverse: machines, apps, database, broker, simulator.
            first = await stack.enter_async_context(children())

            async def simulator() -> Child:
                latency = ["--latency", str(plan.vipps_latency)] if plan.vipps_latency else []
                argv = vendgate("vipps-sim", "--port", "0", *latency)
                first.append(await start_child("vipps-sim", argv, folder))
                return first[-1]

            async def storage() -> Database:
                db = await stack.enter_async_context(database(plan.postgres, folder, plan.keep))
                if app == "cloud":
                    await prepare(db, ids, SLOTS)
                return db

            if plan.postgres:
                broker_context = mosquitto(folder / "broker", ids)
            else:
                broker_context = embedded_broker(folder)
            broker, db, sim = await all_of(
                stack.enter_async_context(broker_context), storage(), simulator()
            )
            started = await stack.enter_async_context(children())
            apps = await all_of(
                *(start_app(plan, app, n, broker, db, sim, folder) for n in range(replicas))
            )
            started.extend(apps)
            if app == "cloud":
                settlements = Settlements(db.url, "vend_sessions", "machines")
            else:
                settlements = Settlements(db.url, "floor_vends", "floor_machines")
            stack.push_async_callback(settlements.aclose)
            settlements.start()
            fleet = Fleet(ids, BrokerLogin(broker.host, broker.port, broker.logins))
            stack.push_async_callback(fleet.stop)
            backends = BackendCpu(db.postgres_name) if db.postgres_name else None
            if backends:
                watching = asyncio.create_task(backends.run())
                stack.callback(watching.cancel)
            yield Stack(broker, db, sim, list(apps), settlements, fleet, folder, backends)
    except BaseException:
        print(f"  (logs of the failed phase kept in {folder})", file=sys.stderr)
        raise
    else:
        if plan.keep:
            print(f"  (logs in {folder})")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def run_folder(app: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-cloud-{app}-"))
    folder.chmod(0o755)  # mosquitto started as root drops to its own user, and reads in here
    return folder


async def all_of(*work: Awaitable[Any]) -> list[Any]:
    """Await all of ``work`` together; then raise the first failure, once each is done (so
    that every context entered was entered on the stack, and is left again)."""
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def start_app(
    plan: Plan, app: str, replica: int, broker: Broker, db: Database, sim: Child, folder: Path
) -> Child:
    port = free_port()
    env = {
        "VENDGATE_DATABASE_URL": db.url,
        "VENDGATE_MQTT_URL": broker.cloud_url(replica),
        "VENDGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "VENDGATE_VIPPS_BASE_URL": sim.url,
        "VENDGATE_DATA_DIR": str(folder / f"{app}-{replica}"),
        # A load test: every scan and status read is welcome (docs/cloud.md, "Rate limits").
        "VENDGATE_SCAN_RATE_BURST": "0",
        "VENDGATE_STATUS_RATE_BURST": "0",
        # On Mosquitto, as in production: replicas split the events (`$share`).
        "VENDGATE_MQTT_SHARED_SUBSCRIPTIONS": "1" if broker.logins else "0",
    }
    if app == "cloud":
        argv = vendgate("cloud", "serve", "--port", str(port), log_level=plan.cloud_log_level)
        return await start_child(f"cloud-{replica}", argv, folder, env)
    commits = str(plan.floor_commits or DEFAULT_FLOOR_COMMITS)
    argv = [sys.executable, str(HERE / "cloud_floor.py"), "--port", str(port), "--commits", commits]
    return await start_child("floor", argv, folder, {**env, "PYTHONPATH": str(HERE)})


async def until_ready(s: Stack, machines: int) -> tuple[float, float, float]:
    """All machines connected, online in the database, their hello acked and planogram
    received; then a quiet second. The seconds until each of the three."""
    start = time.monotonic()
    fleet = s.fleet

    async def connected() -> bool:
        return fleet.connected() == machines

    async def online() -> bool:
        return await s.settlements.online() == machines

    async def quiet() -> bool:
        return fleet.unacked() == 0 and fleet.configured() == machines

    marks = []
    for condition, what in (
        (connected, f"{machines} machines connected"),
        (online, f"{machines} machines online in the database"),
        (quiet, "every hello acked and every planogram received"),
    ):
        await wait_until(condition, what, SETUP_LIMIT)
        marks.append(time.monotonic() - start)
    await asyncio.sleep(1.0)
    return marks[0], marks[1], marks[2]


# -- a throughput phase ---------------------------------------------------------------------------


@dataclass
class Money:
    checked: int = 0  # settled purchases read back at the simulator
    violations: list[str] = field(default_factory=list)
    unsettled: int = 0  # authorized at the machine but not settled when the run ended
    still_reserved: int = 0  # of those, how many still have money reserved
    webhooks: int = 0  # deliveries the simulator made for these purchases
    registrations: int = 0  # webhook registrations they went to

    @property
    def holds(self) -> bool:
        return not self.violations


@dataclass
class Result:
    name: str
    app: str
    replicas: int
    machines: int
    offered: float
    duration: float
    setup_s: tuple[float, float, float]  # connected, online in the database, hellos acked
    setup_failures: int  # connect attempts refused or dropped while the machines came online
    drain_s: float
    started: int
    settled: int
    skipped: int
    purchases_per_s: float
    scan_ms: tuple[float, float] | None
    approve_to_authorized_ms: tuple[float, float] | None
    ended_to_settled_ms: tuple[float, float] | None
    ack_ms: dict[str, tuple[float, float]]
    ping_ms: tuple[float, float] | None  # cmd/ping made -> at the machine
    authorized_resends: int
    purchases_with_resends: int
    event_resends: int
    connect_failures: int  # during the measurement
    refused: dict[str, int]
    cpu_ms_per_purchase: dict[str, float]
    cpu_share: dict[str, float]  # of one core, over the phase
    box_cores: float  # busy cores of the whole box, on average over the phase
    commits_per_purchase: float | None
    floor_commits: int | None
    money: Money
    timeline: dict[str, tuple[float, float]] = field(default_factory=dict)
    wall_s: float = 0.0


def percentiles(values: Sequence[float], scale: float = 1000.0) -> tuple[float, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * scale, p99 * scale


async def run_phase(plan: Plan, app: str, replicas: int) -> Result:
    name = app if app == "floor" else f"cloud x{replicas}" if replicas > 1 else "cloud"
    wall = time.monotonic()
    async with stack(plan, app, replicas, plan.machines) as s:
        s.fleet.start()
        setup_s = await until_ready(s, plan.machines)
        setup_failures = s.fleet.stats.connect_failures
        s.fleet.stats.reset()
        before, commits_before = s.mark(), await s.db.commits()
        start_wall = time.time()
        customers = Customers([a.url for a in s.apps], s.sim.url, s.settlements, plan.think)
        try:
            tasks, skipped = await drive(
                customers, s.fleet, plan.rate, plan.duration, random.Random(plan.seed)
            )
            arrivals_end = time.monotonic()
            if tasks:
                _, unfinished = await asyncio.wait(tasks, timeout=plan.drain)
                for task in unfinished:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            drain_s = time.monotonic() - arrivals_end
            after = s.readings()
            purchases = customers.purchases
            money = await check_money(s.sim.url, purchases)
            steps = await timeline(s.settlements, purchases) if app == "cloud" else {}
        finally:
            await customers.aclose()
        for one in s.apps:  # so their database connections flush their statistics
            await one.stop()
        commits_after = await s.db.commits()
        stats = s.fleet.stats
    result = summarize(
        plan,
        name,
        app,
        replicas,
        purchases,
        start_wall=start_wall,
        setup_s=setup_s,
        setup_failures=setup_failures,
        drain_s=drain_s,
        skipped=skipped,
        before=before,
        after=after,
        commits=None if commits_before is None else commits_after - commits_before,  # type: ignore[operator]
        stats_resends=(stats.authorized_resends, stats.event_resends),
        failures=stats.connect_failures,
        ack_s=stats.ack_s,
        ping_s=stats.ping_s,
        money=money,
        wall_s=time.monotonic() - wall,
    )
    result.timeline = steps
    return result


def summarize(
    plan: Plan,
    name: str,
    app: str,
    replicas: int,
    purchases: list[Purchase],
    *,
    start_wall: float,
    setup_s: tuple[float, float, float],
    setup_failures: int,
    drain_s: float,
    skipped: int,
    before: dict[str, float],
    after: dict[str, float],
    commits: int | None,
    stats_resends: tuple[int, int],
    failures: int,
    ack_s: dict[str, list[float]],
    ping_s: list[float],
    money: Money,
    wall_s: float,
) -> Result:
    settled = sorted(p.settled_wall for p in purchases if p.settled_wall is not None)
    # The rate between the first and the last settlement: the offered rate if the cloud keeps
    # up, its capacity if it does not (its backlog keeps it settling at that rate until done).
    span = settled[-1] - settled[0] if len(settled) > 1 else 0.0
    rate = (len(settled) - 1) / span if span > 0 else 0.0
    count = max(1, len(settled))
    elapsed = after["wall"] - before["wall"]
    cpu = {key: after[key] - before[key] for key in PARTS}
    refused: dict[str, int] = {}
    for purchase in purchases:
        if purchase.stage != "settled":
            refused[purchase.stage] = refused.get(purchase.stage, 0) + 1
    return Result(
        name=name,
        app=app,
        replicas=replicas,
        machines=plan.machines,
        offered=plan.rate,
        duration=plan.duration,
        setup_s=setup_s,
        setup_failures=setup_failures,
        drain_s=drain_s,
        started=len(purchases),
        settled=len(settled),
        skipped=skipped,
        purchases_per_s=rate,
        scan_ms=percentiles([p.scan_s for p in purchases if p.scan_s is not None and p.scanned]),
        # A purchase that never got there counts as infinitely late (shown "unfinished").
        approve_to_authorized_ms=percentiles(
            [p.approve_to_authorized_s or math.inf for p in purchases if p.approve_at]
        ),
        ended_to_settled_ms=percentiles(
            [p.ended_to_settled_s or math.inf for p in purchases if p.ended_wall]
        ),
        ack_ms={kind: pair for kind, values in ack_s.items() if (pair := percentiles(values))},
        ping_ms=percentiles(ping_s),
        authorized_resends=stats_resends[0],
        purchases_with_resends=sum(1 for p in purchases if p.resends),
        event_resends=stats_resends[1],
        connect_failures=failures,
        refused=refused,
        cpu_ms_per_purchase={key: value * 1000 / count for key, value in cpu.items()},
        cpu_share={key: value / elapsed for key, value in cpu.items()},
        box_cores=(after["box"] - before["box"]) / elapsed,
        commits_per_purchase=None if commits is None else commits / count,
        floor_commits=(plan.floor_commits or DEFAULT_FLOOR_COMMITS) if app == "floor" else None,
        money=money,
        wall_s=wall_s,
    )


# -- where a session's time goes ------------------------------------------------------------------

# The cloud's own timestamps of a session, in order (vend_sessions).
STEP_COLUMNS = (
    "authorized_at",
    "started_at",
    "ended_at",
    "captured_at",
    "cancelled_at",
    "verified_at",
    "receipt_at",
    "closed_at",
)
SEGMENTS = (
    ("approved -> the cloud knows", "approve", "authorized_at"),
    ("-> authorized at the machine", "authorized_at", "machine_authorized"),
    ("machine started -> the cloud knows", "machine_authorized", "started_at"),
    ("machine ended -> the cloud knows", "machine_ended", "ended_at"),
    ("-> captured", "ended_at", "captured_at"),
    ("-> cancelled", "captured_at", "cancelled_at"),
    ("-> verified", "cancelled_at", "verified_at"),
    ("-> receipt", "verified_at", "receipt_at"),
    ("-> closed", "receipt_at", "closed_at"),
)


async def timeline(
    settlements: Settlements, purchases: list[Purchase]
) -> dict[str, tuple[float, float]]:
    """p50/p90 of each step of the settled sessions, from the harness's clock (the phone, the
    machine) and the cloud's timestamps: the same box, the same clock."""
    mine = {p.vend_id: p for p in purchases if p.vend_id and p.settled_wall is not None}
    columns = ", ".join(STEP_COLUMNS)
    query = f"SELECT id, {columns} FROM vend_sessions WHERE id IN :ids"
    rows = await settlements.rows(query, list(mine))
    gaps: dict[str, list[float]] = {label: [] for label, _, _ in SEGMENTS}
    for vend_id, *stamps in rows:
        purchase = mine[vend_id]
        at = {
            name: as_wall(value) for name, value in zip(STEP_COLUMNS, stamps, strict=True) if value
        }
        at["approve"] = purchase.approve_wall or 0.0
        at["machine_authorized"] = purchase.authorized_wall or 0.0
        at["machine_ended"] = purchase.ended_wall or 0.0
        for label, first, then in SEGMENTS:
            if at.get(first) and at.get(then):
                gaps[label].append(at[then] - at[first])
    return {label: pair for label, values in gaps.items() if (pair := quantiles(values))}


def quantiles(values: Sequence[float]) -> tuple[float, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[round(0.9 * (len(ordered) - 1))] * 1000


# -- the money, read back from the simulator ------------------------------------------------------


async def check_money(sim_url: str, purchases: list[Purchase]) -> Money:
    """Every purchase that reached its machine, as the simulator's ledger has it."""
    result = Money()
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=30) as http:
        vipps = VippsClient(VippsSettings(base_url=sim_url), http)

        async def one(purchase: Purchase) -> None:
            assert purchase.vend_id is not None
            async with gate:
                payment = await vipps.epayment.get_payment(purchase.vend_id)
                events = await vipps.epayment.get_events(purchase.vend_id)
            money = payment.aggregate
            reserved = money.authorized_amount.value
            captured, cancelled = money.captured_amount.value, money.cancelled_amount.value
            left = reserved - captured - cancelled
            if purchase.settled_wall is None:
                result.unsettled += 1
                result.still_reserved += left > 0
                return
            result.checked += 1
            captures = sum(1 for e in events if e.name == "CAPTURED" and e.success)
            problems = [
                f"captured {captured} (price {PRICE})" if captured != PRICE else "",
                f"cancelled {cancelled} (reserved {reserved} - price {PRICE})"
                if cancelled != reserved - PRICE
                else "",
                f"{left} left reserved" if left else "",
                f"{captures} captures" if captures != 1 else "",
                f"outcome {purchase.outcome}" if purchase.outcome != "paid" else "",
            ]
            if any(problems):
                result.violations.append(
                    f"{purchase.vend_id}: {', '.join(p for p in problems if p)}"
                )

        await asyncio.gather(*(one(p) for p in purchases if p.vend_id is not None))
        references = {p.vend_id for p in purchases}
        deliveries = (await http.get(f"{sim_url}/sim/webhook-deliveries")).json()
        ours = [d for d in deliveries if d["reference"] in references]
        result.webhooks = sum(d["delivered"] for d in ours)
        result.registrations = len({d["registration_id"] for d in ours})
    return result


# -- the reconnect storm ------------------------------------------------------------------------


@dataclass
class Storm:
    name: str
    machines: int
    connected_s: float | None  # all connected at the broker (CONNACK), from the start
    online_s: float | None  # all online in the database
    hello_acked_s: float | None  # every machine's hello acked
    connected: int
    online: int
    connect_failures: int
    cpu_s: dict[str, float]
    cpu_share: dict[str, float]
    box_cores: float
    wall_s: float = 0.0


async def run_storm(plan: Plan, app: str) -> Storm:
    wall = time.monotonic()
    limit = max(60.0, plan.storm / 100)
    async with stack(plan, app, 1, plan.storm) as s:
        fleet = s.fleet
        before = s.mark()
        start = time.monotonic()
        fleet.start()
        marks: dict[str, float | None] = {"connected": None, "online": None, "hello": None}
        online = 0
        while time.monotonic() - start < limit and None in marks.values():
            now = time.monotonic() - start
            if marks["connected"] is None and fleet.connected() == plan.storm:
                marks["connected"] = now
            if marks["online"] is None:
                online = await s.settlements.online()
                if online == plan.storm:
                    marks["online"] = now
            if marks["hello"] is None and marks["connected"] and fleet.unacked() == 0:
                marks["hello"] = now
            await asyncio.sleep(0.05)  # polling the database and the machines
        after = s.readings()
        connected, failures = fleet.connected(), fleet.stats.connect_failures
        if marks["online"] is None:
            online = await s.settlements.online()
    elapsed = after["wall"] - before["wall"]
    cpu = {key: after[key] - before[key] for key in PARTS}
    return Storm(
        name=app,
        machines=plan.storm,
        connected_s=marks["connected"],
        online_s=marks["online"],
        hello_acked_s=marks["hello"],
        connected=connected,
        online=online,
        connect_failures=failures,
        cpu_s=cpu,
        cpu_share={key: value / elapsed for key, value in cpu.items()},
        box_cores=(after["box"] - before["box"]) / elapsed,
        wall_s=time.monotonic() - wall,
    )


# -- the report -------------------------------------------------------------------------------


def pair(values: tuple[float, float] | None) -> str:
    """``p50 / p99`` of milliseconds, in s from a second on; ``unfinished`` for infinity."""
    if values is None:
        return "-"
    p50, p99 = values
    if math.isinf(p50):
        return "unfinished / unfinished"
    if p50 >= 1000:
        later = "unfinished" if math.isinf(p99) else f"{p99 / 1000:.2f} s"
        return f"{p50 / 1000:.2f} s / {later}"
    return f"{p50:.0f} / {'unfinished' if math.isinf(p99) else f'{p99:.0f} ms'}"


def postgres_part(value: float, unit: str) -> str:
    """The PostgreSQL backends' part, if there is one (SQLite runs inside the app)."""
    return f"PostgreSQL {value:.{0 if unit == '%' else 1}f}{unit}, " if value else ""


def box(cores: float, ours: dict[str, float]) -> str:
    others = max(0.0, cores - sum(ours.values()))
    return (
        f"the box: {cores:.2f} of {os.cpu_count()} cores busy, {others:.2f} of them by other "
        "processes"
    )


def describe_phase(r: Result) -> None:
    label = "the floor" if r.app == "floor" else f"{r.replicas} cloud process(es)"
    offered = f"{r.offered:g}/s offered (Poisson)" if r.offered > 0 else "back to back"
    print(
        f"\n== {r.name}: {label}, {r.machines} machines, {offered} for {r.duration:g} s "
        f"(the phase took {r.wall_s:.0f} s)"
    )
    print(
        f"  set-up: machines connected {r.setup_s[0]:.1f} s, online in the database "
        f"{r.setup_s[1]:.1f} s, hellos acked {r.setup_s[2]:.1f} s (connects refused or dropped: "
        f"{r.setup_failures})"
    )
    print(
        f"  {r.started} purchases started, {r.settled} settled; "
        f"drained in {r.drain_s:.1f} s; arrivals that found no free machine: {r.skipped}"
    )
    for stage, count in sorted(r.refused.items()):
        print(f"  not settled: {count} x {stage}")
    print(f"  purchases/s (settlements, first to last): {r.purchases_per_s:.1f}")
    print(f"  scan -> 302: {pair(r.scan_ms)}   (p50 / p99 of the scans answered 302)")
    print(
        f"  approve -> authorized at the machine: {pair(r.approve_to_authorized_ms)}   "
        "(unfinished: not there when the run ended)"
    )
    print(f"  ended -> settled (session closed in the database): {pair(r.ended_to_settled_ms)}")
    acks = ", ".join(f"{kind} {pair(values)}" for kind, values in sorted(r.ack_ms.items()))
    print(f"  event -> ack at the machine: {acks or '-'}")
    print(f"  cmd/ping made -> at the machine: {pair(r.ping_ms)}")
    print(
        f"  authorized re-sent: {r.authorized_resends} times, to {r.purchases_with_resends} of "
        f"{r.started} purchases; events re-sent by machines: {r.event_resends}; machines' "
        f"connects refused or dropped: {r.connect_failures}"
    )
    cpu, share = r.cpu_ms_per_purchase, r.cpu_share
    app_name = "floor" if r.app == "floor" else "cloud"
    print(
        f"  CPU per settled purchase: {app_name} {cpu['app']:.1f} ms, "
        f"simulator {cpu['sim']:.1f} ms, broker {cpu['broker']:.1f} ms, "
        f"{postgres_part(cpu['db'], ' ms')}harness {cpu['harness']:.1f} ms"
    )
    print(
        f"  CPU share of one core: {app_name} {share['app']:.0%}, simulator {share['sim']:.0%}, "
        f"broker {share['broker']:.0%}, {postgres_part(share['db'] * 100, '%')}"
        f"harness {share['harness']:.0%}; {box(r.box_cores, share)}"
    )
    if share["harness"] > 0.85:
        print("  ! the harness used most of a core: the figures may be the harness's limit")
    if r.commits_per_purchase is not None:
        made = f" (the floor makes {r.floor_commits})" if r.floor_commits else ""
        print(f"  commits per settled purchase: {r.commits_per_purchase:.1f} (xact_commit){made}")
    elif r.floor_commits:
        print(f"  commits per purchase: the floor makes {r.floor_commits} (not counted on SQLite)")
    else:
        print("  commits per purchase: not counted on SQLite (PostgreSQL only)")
    m = r.money
    verdict = "all hold" if m.holds else f"{len(m.violations)} VIOLATE"
    print(
        f"  money rules, read back from the simulator for {m.checked} settled purchases "
        f"(captured = price, cancelled = reserved - price, nothing left reserved, one capture): "
        f"{verdict}"
    )
    for line in m.violations[:10]:
        print(f"    {line}")
    if m.unsettled:
        print(f"  unsettled at the end: {m.unsettled}, of which {m.still_reserved} still reserved")
    if r.timeline:
        print("  where a settled session's time goes (p50 / p90, the cloud's own timestamps):")
        for label, values in r.timeline.items():
            print(f"    {label}: {pair(values)}")
    reached = max(1, m.checked + m.unsettled)
    print(
        f"  webhooks delivered per purchase: {m.webhooks / reached:.1f}, to "
        f"{m.registrations} registration(s)"
    )


def table(results: Sequence[Result]) -> None:
    print(
        "\n| phase | purchases/s | scan -> 302 p50 / p99 | approve -> authorized p50 / p99 "
        "| ended -> settled p50 / p99 | CPU / purchase | commits / purchase | authorized re-sent |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        commits = "-" if r.commits_per_purchase is None else f"{r.commits_per_purchase:.1f}"
        print(
            f"| {r.name} | {r.purchases_per_s:.1f} | {pair(r.scan_ms)} "
            f"| {pair(r.approve_to_authorized_ms)} | {pair(r.ended_to_settled_ms)} "
            f"| {r.cpu_ms_per_purchase['app']:.0f} ms | {commits} | {r.authorized_resends} |"
        )


def describe_storm(s: Storm) -> None:
    def mark(value: float | None, count: int) -> str:
        return f"{value:.2f} s" if value is not None else f"not within the limit ({count} made it)"

    print(f"\n== reconnect storm, {s.name}: {s.machines} machines connect at once")
    print(f"  all connected at the broker: {mark(s.connected_s, s.connected)}")
    print(f"  all online in the database: {mark(s.online_s, s.online)}")
    print(f"  every hello acked: {mark(s.hello_acked_s, s.connected)}")
    print(f"  connect attempts refused or dropped: {s.connect_failures}")
    name = "floor" if s.name == "floor" else "cloud"
    cpu, share = s.cpu_s, s.cpu_share
    print(
        f"  CPU: {name} {cpu['app']:.1f} s ({share['app']:.0%} of a core), broker "
        f"{cpu['broker']:.1f} s, {postgres_part(cpu['db'], ' s')}harness {cpu['harness']:.1f} s "
        f"({share['harness']:.0%}); "
        f"{box(s.box_cores, share)}"
    )


# -- main -------------------------------------------------------------------------------------


async def choose_tier(wanted: str | None) -> str:
    if wanted == "embedded":
        return wanted
    missing = None if shutil.which("mosquitto") else "no mosquitto binary"
    missing = missing or await postgres_available()
    if missing is None:
        return "mosquitto"
    if wanted == "mosquitto":
        raise SystemExit(
            f"bench_cloud: the mosquitto tier needs Mosquitto and PostgreSQL: {missing}"
        )
    print(f"(the mosquitto tier is not available here: {missing}; running the embedded tier)")
    return "embedded"


async def main(args: argparse.Namespace) -> int:
    quiet_lost_connections(asyncio.get_running_loop())
    tier = await choose_tier(args.tier)
    plan = plan_from(args, tier)
    started = time.monotonic()
    db = "PostgreSQL" if plan.postgres else "SQLite"
    broker = "Mosquitto (dynamic security)" if plan.postgres else "amqtt (embedded)"
    load = os.getloadavg()[0]
    print(
        f"cloud benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load:.2f} at the start; tier {tier}: {broker} + {db}"
    )
    if plan.vipps_latency:
        print(f"the simulator adds {plan.vipps_latency:g} s to every Vipps API answer")
    output: dict[str, Any] = {"tier": tier, "plan": asdict(plan)}
    if plan.storm:
        await storms(plan, output)
    else:
        await throughput(plan, output)
    print(
        f"\nthe run took {time.monotonic() - started:.0f} s; load average at the end "
        f"{os.getloadavg()[0]:.2f}"
    )
    if args.json:
        write_json(Path(args.json), output)
    return 0


async def storms(plan: Plan, output: dict[str, Any]) -> None:
    found = []
    for app in ("cloud", "floor"):
        if app in plan.phases:
            found.append(await run_storm(plan, app))
            describe_storm(found[-1])
    output["storms"] = [asdict(s) for s in found]


async def throughput(plan: Plan, output: dict[str, Any]) -> None:
    results: list[Result] = []
    if "cloud" in plan.phases:
        results.append(await run_phase(plan, "cloud", 1))
        describe_phase(results[-1])
    if "cloud" in plan.phases and plan.replicas > 1:
        results.append(await run_phase(plan, "cloud", plan.replicas))
        describe_phase(results[-1])
        one, many = results[0].purchases_per_s, results[-1].purchases_per_s
        print(f"\n{plan.replicas} replicas / 1 replica: {many / one if one else 0:.2f}")
    if "floor" in plan.phases:
        if plan.floor_commits is None:
            plan.floor_commits = floor_commits(results[0]) if results else DEFAULT_FLOOR_COMMITS
        results.append(await run_phase(plan, "floor", 1))
        describe_phase(results[-1])
    if len(results) > 1 and results[-1].app == "floor":
        cloud, floor = results[0], results[-1]
        ratio = cloud.purchases_per_s / floor.purchases_per_s if floor.purchases_per_s else 0.0
        cpu = cloud.cpu_ms_per_purchase["app"] / max(1e-9, floor.cpu_ms_per_purchase["app"])
        print(
            f"\ncloud/floor: {ratio:.2f} of the floor's purchases/s; "
            f"{cpu:.1f}x its CPU per purchase"
        )
        output["cloud_over_floor"] = ratio
    table(results)
    output["phases"] = [asdict(r) for r in results]


def write_json(path: Path, output: dict[str, Any]) -> None:
    path.write_text(json.dumps(output, indent=2) + "\n")


def floor_commits(cloud: Result) -> int:
    """The cloud's commits per purchase, if counted on a run where (nearly) every purchase
    settled: where many did not, the count per settled purchase says little."""
    counted = cloud.commits_per_purchase
    if counted is None or cloud.settled < 0.9 * cloud.started:
        print(
            f"\n(the floor makes {DEFAULT_FLOOR_COMMITS} commits per purchase: the cloud's count "
            "is unknown or too few of its purchases settled)"
        )
        return DEFAULT_FLOOR_COMMITS
    return round(counted)


def phases_of(args: argparse.Namespace) -> tuple[str, ...]:
    """The cloud, then the floor; with --replicas the replica phases only (unless asked)."""
    wanted = tuple(args.phases.split(",")) if args.phases else ("cloud", "floor")
    unknown = set(wanted) - {"cloud", "floor"}
    if unknown or not wanted:
        raise SystemExit(f"bench_cloud: --phases takes cloud and/or floor, got {args.phases!r}")
    if args.replicas > 1 and not args.phases:
        return ("cloud",)
    return wanted


def plan_from(args: argparse.Namespace, tier: str) -> Plan:
    quick = args.quick
    machines = args.machines if args.machines is not None else (10 if quick else 200)
    rate = args.rate if args.rate is not None else (4.0 if quick else 25.0)
    duration = args.duration if args.duration is not None else (3.0 if quick else 15.0)
    think = args.think if args.think is not None else (0.2 if quick else 0.5)
    drain = args.drain if args.drain is not None else max(20.0, duration)
    if args.replicas > 1 and tier != "mosquitto":
        raise SystemExit("bench_cloud: --replicas needs the mosquitto tier (shared subscriptions)")
    return Plan(
        tier=tier,
        machines=machines,
        rate=rate,
        duration=duration,
        think=think,
        drain=drain,
        replicas=args.replicas,
        storm=args.reconnect_storm,
        phases=phases_of(args),
        floor_commits=args.floor_commits,
        vipps_latency=args.vipps_latency,
        cloud_log_level=args.cloud_log_level,
        seed=args.seed,
        keep=args.keep,
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Figures and how they were made: README.md, 'Measured figures'; docs/testing.md.",
    )
    parser.add_argument("--machines", type=int, help="emulated machines (default 200; quick 10)")
    parser.add_argument(
        "--rate", type=float, help="customers per second, Poisson; 0: back to back (default 25)"
    )
    parser.add_argument("--duration", type=float, help="seconds of arrivals (default 15)")
    parser.add_argument(
        "--tier",
        choices=("mosquitto", "embedded"),
        help="mosquitto: Mosquitto + PostgreSQL; embedded: amqtt + SQLite "
        "(default: mosquitto if both are here)",
    )
    parser.add_argument(
        "--replicas", type=int, default=1, help="cloud processes on one PostgreSQL (mosquitto tier)"
    )
    parser.add_argument(
        "--reconnect-storm",
        type=int,
        default=0,
        metavar="N",
        help="instead of purchases: N machines connect at once; time until all are online",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~15 s)")
    parser.add_argument(
        "--think", type=float, help="customer's seconds to approve, to choose (0.5)"
    )
    parser.add_argument("--drain", type=float, help="seconds to let open purchases finish")
    parser.add_argument(
        "--phases",
        help="which to run: cloud,floor (default both; with --replicas: cloud)",
    )
    parser.add_argument(
        "--floor-commits",
        type=int,
        help="commits per purchase the floor makes (default: the cloud's count, on SQLite "
        f"{DEFAULT_FLOOR_COMMITS})",
    )
    parser.add_argument("--vipps-latency", type=float, default=0.0, help="seconds added by Vipps")
    parser.add_argument("--cloud-log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrivals")
    parser.add_argument(
        "--keep", action="store_true", help="keep each phase's logs (and PostgreSQL database)"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
