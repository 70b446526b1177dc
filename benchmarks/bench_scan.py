"""Scan benchmark: what the ping before reservation adds to ``GET /m/{id}`` → 302.

Not a test: it prints figures. The cloud app runs in this process on SQLite, with the Vipps
simulator in process too (both over ASGI, no HTTP sockets), a broker (mosquitto with
``set_tcp_nodelay true`` if installed, else the embedded amqtt), the vend board simulator in
this process, and the real edge agent (``python -m vendgate edge``, its own process) on its
pty: the machine that answers ``cmd/ping`` with ``evt/pong``.

Each run is one scan, timed from the request to the 302 (session opened, payment created at
the simulator); then the customer aborts in Vipps and the run waits until the session is
closed before the next. Runs alternate between the ping on (``ping_timeout`` 1.5 s, the
default) and off (``ping_timeout`` 0: the floor, what a scan costs without asking the
machine), in blocks, in the same process. CPU is this process's own (cloud, simulator,
board) during each scan, and the agent's, read from /proc.

    .venv/bin/python benchmarks/bench_scan.py [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from bench_edge import agent, broker, cpu_seconds  # the same broker, agent and /proc readings
from litestar import Litestar

from vendgate.boardsim import BoardSim, VmcConfig
from vendgate.cloud.app import CloudParts, create_app
from vendgate.cloud.db import transaction
from vendgate.cloud.machines import (
    MachineSpec,
    SlotSpec,
    get_machine,
    has_open_vend,
    upsert_machine,
)
from vendgate.cloud.settings import (
    CloudSettings,
    DatabaseSettings,
    MqttSettings,
    RateLimitSettings,
    TimingSettings,
    WebhookSettings,
    sqlite_url,
)
from vendgate.cloud.vipps import VippsSettings
from vendgate.cloud.vippssim import SimSettings, VippsSimulator, create_vipps_sim

PUBLIC_URL = "http://cloud.bench"
VIPPS_URL = "http://vipps.bench"
MACHINE = "bench-scan"
BLOCK = 10  # scans per block; blocks alternate between the ping on and off
SLOTS = [SlotSpec(1, "Cola 0.5 l", 2500), SlotSpec(5, "Sandwich", 3500)]


class Forward:
    """An ASGI app that forwards to another, set later (the two apps call each other)."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def settings_for(url: str, folder: Path) -> CloudSettings:
    host, port = url.removeprefix("mqtt://").split(":")
    return CloudSettings(
        public_url=PUBLIC_URL,
        data_dir=folder,
        database=DatabaseSettings(url=sqlite_url(folder)),
        mqtt=MqttSettings(host=host, port=int(port), client_id="bench-cloud"),
        vipps=VippsSettings(base_url=VIPPS_URL),
        webhooks=WebhookSettings(),
        # Webhooks close each aborted session; nothing else should run during a scan.
        timing=TimingSettings(poll_first=3600, poll_interval=3600, reconcile_interval=5.0),
        rate_limits=RateLimitSettings(scan_burst=0),  # every scan of this run is welcome
    )


@asynccontextmanager
async def cloud(settings: CloudSettings) -> AsyncIterator[tuple[Litestar, VippsSimulator]]:
    to_cloud = Forward()
    webhooks = httpx.AsyncClient(transport=httpx.ASGITransport(app=to_cloud))
    sim_app = create_vipps_sim(SimSettings(webhook_retry_delays=(0.05,)), webhook_http=webhooks)
    app = create_app(settings, vipps_transport=httpx.ASGITransport(app=sim_app))
    to_cloud.app = app
    sim: VippsSimulator = sim_app.state.sim
    try:
        async with app.lifespan():
            yield app, sim
    finally:
        await sim.aclose()
        await webhooks.aclose()


async def until(condition: Callable[[], Awaitable[bool]], what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not await condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)  # polling another task's state


@dataclasses.dataclass
class Samples:
    latency_ms: list[float] = dataclasses.field(default_factory=list)
    cloud_cpu_ms: list[float] = dataclasses.field(default_factory=list)
    agent_cpu_ms: list[float] = dataclasses.field(default_factory=list)


async def one_scan(
    http: httpx.AsyncClient, cloud: CloudParts, sim: VippsSimulator, pid: int, samples: Samples
) -> None:
    cpu, agent_cpu = time.process_time(), cpu_seconds(pid)
    start = time.perf_counter()
    response = await http.get(f"/m/{MACHINE}")
    elapsed = time.perf_counter() - start
    samples.cloud_cpu_ms.append((time.process_time() - cpu) * 1000)
    samples.agent_cpu_ms.append((cpu_seconds(pid) - agent_cpu) * 1000)
    if response.status_code != 302:
        raise RuntimeError(f"scan answered {response.status_code}: {response.text[:200]}")
    samples.latency_ms.append(elapsed * 1000)
    # The customer aborts in the app: the webhook closes the session, the machine is free.
    payment = next(p for p in sim.payments._payments.values() if p.ledger.state == "CREATED")
    sim.payments.reject(payment)

    async def free() -> bool:
        async with transaction(cloud.sessions) as db:
            return not await has_open_vend(db, MACHINE)

    await until(free, "the aborted session closed")


async def measure(url: str, runs: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-scan-cloud-"))
    settings = settings_for(url, folder)
    with_ping = settings.timing
    floor = dataclasses.replace(settings.timing, ping_timeout=0)
    try:
        async with (
            cloud(settings) as (app, sim),
            BoardSim(config=VmcConfig(poll_interval_s=0.2)) as board,
            agent(url, MACHINE, board.device_path) as pid,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as http,
        ):
            parts: CloudParts = app.state.parts
            async with transaction(parts.sessions) as db:
                await upsert_machine(db, MachineSpec(MACHINE, "Bench", SLOTS), parts.clock.now())
            await board.wait_ready()

            async def online() -> bool:
                async with transaction(parts.sessions) as db:
                    return (await get_machine(db, MACHINE)).online

            await until(online, "the machine online")
            for _ in range(BLOCK):  # warm-up: imports, first connections, SQLite pages
                await one_scan(http, parts, sim, pid, Samples())
            results = {"ping": Samples(), "floor": Samples()}
            for block in range(2 * max(1, runs // BLOCK)):
                mode = "ping" if block % 2 == 0 else "floor"
                # The one part that reads the ping bound: the scan's purchases.
                parts.customers.purchases.timing = with_ping if mode == "ping" else floor
                for _ in range(BLOCK):
                    await one_scan(http, parts, sim, pid, results[mode])
            report(results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(results: dict[str, Samples]) -> None:
    for mode, samples in results.items():
        label = "ping on (1.5 s bound)" if mode == "ping" else "ping off (floor)"
        lat = samples.latency_ms
        print(
            f"scan -> 302, {label}, {len(lat)} scans: p50 {statistics.median(lat):.1f} ms, "
            f"p99 {percentile(lat, 0.99):.1f} ms, min {min(lat):.1f} ms, max {max(lat):.1f} ms; "
            f"CPU per scan: this process {statistics.mean(samples.cloud_cpu_ms):.1f} ms, "
            f"agent {statistics.mean(samples.agent_cpu_ms):.2f} ms"
        )
    added = statistics.median(results["ping"].latency_ms) - statistics.median(
        results["floor"].latency_ms
    )
    print(f"the ping adds {added:.1f} ms to the median scan")


async def main(args: argparse.Namespace) -> None:
    logging.disable(logging.INFO)  # a log line per request would be most of what is measured
    async with broker() as (url, description):
        print(f"scan benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs")
        print(f"broker: {description}; cloud on SQLite, HTTP in process (ASGI)")
        await measure(url, args.runs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="scans per mode (default 200)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
