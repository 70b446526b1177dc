"""Crash tests: the cloud process is killed in the middle of settling, then restarted.

The cloud runs as a real subprocess against the Vipps simulator (``vendgate vipps-sim``, another
subprocess) and the embedded broker. The first cloud is ``vendgate cloud serve`` started through
the test-only entry point ``tests/support/crashing.py``, whose ``faults`` make it exit with status
137 at one point of the settlement; then plain ``vendgate cloud serve`` takes over, and its
reconciler must finish: exactly one capture and one cancel in the simulator's event log,
captured + cancelled = authorized.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from flow_support import COLA, MAX_PRICE, EdgeScript, FakeEdge
from support.crashing import COMMAND as CRASHING
from support.crashing import EXIT_STATUS
from support.mosquitto import free_port

from vendgate.broker import EmbeddedBroker
from vendgate.cloud.faults import POINTS
from vendgate.cloud.vipps import VippsClient, VippsSettings

STARTUP_LIMIT = 30.0
VENDGATE = (sys.executable, "-m", "vendgate")


@asynccontextmanager
async def vendgate(
    *args: str, env: dict[str, str], stderr: Path, run: tuple[str, ...] = VENDGATE
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """Run ``vendgate ARGS`` (or ``RUN ARGS``), its stderr into the file ``stderr``; yield the
    process and the first line it prints (its URL)."""
    with stderr.open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            *run, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=errors
        )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), STARTUP_LIMIT)).decode()
        assert line.strip(), f"{' '.join(args)} did not start: {tail(stderr)}"
        yield process, line.strip()
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


def cloud_env(tmp_path: Path, broker: EmbeddedBroker, sim_url: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "VENDGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cloud.db",
        "VENDGATE_MQTT_URL": broker.url,
        "VENDGATE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "VENDGATE_VIPPS_BASE_URL": sim_url,
        "VENDGATE_POLL_FIRST_S": "0.1",
        "VENDGATE_POLL_INTERVAL_S": "0.1",
        "VENDGATE_AUTHORIZED_RESEND_S": "0.3",
        "VENDGATE_RECONCILE_INTERVAL_S": "0.1",
        "VENDGATE_WORK_LEASE_S": "1",
        "VENDGATE_RETRY_DELAY_S": "0.2",
        "VENDGATE_PING_TIMEOUT_S": "10",  # the scan's ping: generous, a loaded CI box is slow
    }


async def run_command(*args: str, env: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vendgate", *args, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    assert await process.wait() == 0


def vend_ids(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "cloud.db") as db:
        return [row[0] for row in db.execute("SELECT id FROM vend_sessions")]


def vend_state(tmp_path: Path, vend_id: str) -> str:
    with sqlite3.connect(tmp_path / "cloud.db") as db:
        row = db.execute("SELECT state FROM vend_sessions WHERE id = ?", (vend_id,)).fetchone()
    return str(row[0])


async def settled_in_simulator(vipps: VippsClient, reference: str) -> list[str]:
    """Wait until nothing is left reserved; return the payment's event names."""
    for _ in range(600):
        aggregate = (await vipps.epayment.get_payment(reference)).aggregate
        left = (
            aggregate.authorized_amount.value
            - aggregate.captured_amount.value
            - aggregate.cancelled_amount.value
        )
        if aggregate.authorized_amount.value and left == 0:
            return [event.name for event in await vipps.epayment.get_events(reference)]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{reference} was never settled")


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", POINTS)
async def test_a_killed_cloud_settles_exactly_once_after_restart(
    tmp_path: Path, amqtt_broker: EmbeddedBroker, crash_at: str
) -> None:
    port = free_port()
    sim = ("vipps-sim", "--port", "0")
    async with vendgate(*sim, env=dict(os.environ), stderr=tmp_path / "sim.stderr") as (_, sim_url):
        env = cloud_env(tmp_path, amqtt_broker, sim_url, port)
        slots = ["--slot", f"11:Cola:{COLA.price}:1500", "--slot", f"12:Chocolate:{MAX_PRICE}"]
        await run_command("cloud", "add-machine", "m1", "Lobby", *slots, env=env)
        assert amqtt_broker.port is not None
        edge = FakeEdge("127.0.0.1", amqtt_broker.port, "m1", script=EdgeScript.buys(COLA.price))
        async with edge.online(), httpx.AsyncClient(timeout=10) as http:
            serve = ("cloud", "serve", "--port", str(port))
            crash = (*CRASHING, "--crash-at", crash_at)
            errors = tmp_path / "crashing.stderr"
            async with vendgate(*serve, env=env, run=crash, stderr=errors) as (crashing, url):
                await customer_buys(http, url, sim_url)
                assert await asyncio.wait_for(crashing.wait(), 30) == EXIT_STATUS
            assert f"crashing: {crash_at} reached" in errors.read_text()  # not another death
            (reference,) = vend_ids(tmp_path)
            assert vend_state(tmp_path, reference) == "settling"  # killed mid-way

            async with vendgate(*serve, env=env, stderr=tmp_path / "cloud.stderr"):
                vipps = VippsClient(VippsSettings(base_url=sim_url), http)
                names = await settled_in_simulator(vipps, reference)
                payment = await vipps.epayment.get_payment(reference)

    assert names.count("CAPTURED") == 1
    assert names.count("CANCELLED") == 1
    assert payment.aggregate.captured_amount.value == COLA.price
    assert payment.aggregate.cancelled_amount.value == MAX_PRICE - COLA.price


async def customer_buys(http: httpx.AsyncClient, cloud_url: str, sim_url: str) -> None:
    """Scan the sticker, then approve on the simulator's phone page (as a person would)."""
    scanned = await scan_when_online(http, cloud_url)
    assert scanned.status_code == 302, scanned.text
    token = httpx.URL(scanned.headers["location"]).params["token"]
    approved = await http.post(f"{sim_url}/sim/landing/{token}/approve")
    assert approved.status_code == 303
    assert approved.headers["location"].startswith(f"{cloud_url}/s/")


async def scan_when_online(http: httpx.AsyncClient, cloud_url: str) -> httpx.Response:
    """Until the cloud has the machine's retained status, a scan says "offline" (no payment)."""
    for _ in range(600):
        scanned = await http.get(f"{cloud_url}/m/m1")
        if 'data-state="offline"' not in scanned.text:
            return scanned
        await asyncio.sleep(0.05)
    raise AssertionError("the cloud never saw machine m1 online")
