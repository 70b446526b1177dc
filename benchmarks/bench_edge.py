"""Edge agent benchmark: idle footprint, and how fast ``authorized`` becomes BEGIN SESSION.

Not a test: it prints figures. It runs the real agent (``python -m vendgate edge``, its own
process, so its RSS and CPU are its own), the vend board simulator on a pty in this process
(the VMC polls the reader every ``--poll-interval`` seconds), a broker (mosquitto with
``set_tcp_nodelay true`` if installed, else the embedded amqtt), and a cloud client that acks
every event, as the real cloud does.

1. Idle: after start-up, the agent's CPU share and RSS over ``--idle-seconds`` with the board
   polled every 200 ms and nothing happening.
2. Latency: ``--runs`` times, from the cloud publishing ``cmd/authorized`` to the VMC receiving
   BEGIN SESSION on the bus; the customer then cancels and the next run starts. The agent answers
   the VMC at its next POLL, so half a poll interval on average is the bus's share; the figures
   are given for each ``--poll-intervals`` value.

    .venv/bin/python benchmarks/bench_edge.py [--runs 200] [--idle-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt

from vendgate.boardsim import BoardSim, VmcConfig
from vendgate.broker import EmbeddedBroker
from vendgate.protocol import Money
from vendgate.protocol.mqtt import Ack, Authorized, Event, TopicTree, decode_for_topic

TREE = TopicTree()
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the broker -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def broker() -> AsyncIterator[tuple[str, str]]:
    """``(url, description)`` of a broker for the run."""
    if shutil.which("mosquitto"):
        async with mosquitto() as url:
            yield url, "mosquitto (separate process, set_tcp_nodelay true)"
    else:
        async with EmbeddedBroker() as embedded:
            yield embedded.url, "amqtt (embedded in the benchmark process)"


@asynccontextmanager
async def mosquitto() -> AsyncIterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="bench-edge-mosquitto-"))
    port = free_port()
    config = write_mosquitto_config(folder, port)
    process = await asyncio.create_subprocess_exec("mosquitto", "-c", str(config))
    try:
        await wait_for_port(port)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
        shutil.rmtree(folder, ignore_errors=True)


def write_mosquitto_config(folder: Path, port: int) -> Path:
    """Anonymous, loopback, no persistence; TCP_NODELAY as in the repo's mosquitto.conf."""
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
        "persistence false\nlog_dest none\n"
    )
    folder.chmod(0o755)  # mosquitto started as root drops to its own user
    return config


async def wait_for_port(port: int) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)


# -- the agent process ------------------------------------------------------------------------


@asynccontextmanager
async def agent(url: str, machine_id: str, serial: str) -> AsyncIterator[int]:
    """``vendgate edge`` in its own process; yields its pid."""
    data_dir = tempfile.mkdtemp(prefix="bench-edge-data-")
    env = {
        **os.environ,
        "VENDGATE_MACHINE_ID": machine_id,
        "VENDGATE_MQTT_URL": url,
        "VENDGATE_SERIAL": serial,
        "VENDGATE_DATA_DIR": data_dir,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vendgate", "--log-level", "WARNING", "edge", env=env
    )
    try:
        yield process.pid
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)
        shutil.rmtree(data_dir, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the cloud --------------------------------------------------------------------------------


async def ack_everything(client: aiomqtt.Client) -> None:
    """Ack every event, as the cloud does after its commit, so the outbox stays empty."""
    async for raw in client.messages:
        parsed = TREE.parse(str(raw.topic))
        message = decode_for_topic(parsed, bytes(raw.payload))  # type: ignore[arg-type,unused-ignore]
        if isinstance(message, Event):
            ack = Ack.create(now=datetime.now(UTC), events=[message.id])
            await client.publish(str(TREE.command(parsed.machine_id, "ack")), ack.encode(), qos=1)


def authorized(vend_id: str) -> bytes:
    now = datetime.now(UTC)
    return Authorized.create(
        now=now, vend_id=vend_id, amount=Money(3500, "NOK"), expires_at=now + timedelta(minutes=2)
    ).encode()


# -- the two measurements ---------------------------------------------------------------------


async def measure(url: str, poll_interval: float, runs: int, idle_seconds: float) -> None:
    machine_id = f"bench{uuid.uuid4().hex[:6]}"
    host, port = url.removeprefix("mqtt://").split(":")
    config = VmcConfig(poll_interval_s=poll_interval)
    async with (
        BoardSim(config=config) as sim,
        aiomqtt.Client(host, int(port), socket_options=NODELAY) as cloud,
        agent(url, machine_id, sim.device_path) as pid,
    ):
        await cloud.subscribe(f"{TREE.prefix}/{machine_id}/evt/+", qos=1)
        acker = asyncio.create_task(ack_everything(cloud))
        async with asyncio.timeout(30):
            await sim.wait_ready()
        await asyncio.sleep(2.0)  # start-up done: imports, connect, hello, reader enabled
        if idle_seconds > 0:
            await idle(pid, poll_interval, idle_seconds)
        await latency(cloud, sim, machine_id, poll_interval, runs)
        print(f"  agent RSS after {runs} vend sessions: {rss_mib(pid):.1f} MiB")
        acker.cancel()


async def idle(pid: int, poll_interval: float, seconds: float) -> None:
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu = cpu_seconds(pid) - cpu_before
    wall = time.monotonic() - wall_before
    print(
        f"idle, board polled every {poll_interval * 1000:.0f} ms, {wall:.0f} s: "
        f"CPU {100 * cpu / wall:.2f} % of one core ({cpu:.2f} CPU-s), RSS {rss_mib(pid):.1f} MiB"
    )


async def latency(
    cloud: aiomqtt.Client, sim: BoardSim, machine_id: str, poll_interval: float, runs: int
) -> None:
    topic = str(TREE.command(machine_id, "authorized"))
    samples: list[float] = []
    for run in range(runs):
        payload = authorized(f"bench-{run}-{uuid.uuid4().hex[:6]}")
        # A random phase against the VMC's poll cycle, as a real customer has.
        await asyncio.sleep(random.uniform(0, poll_interval))
        async with asyncio.timeout(10):
            start = time.perf_counter()
            await cloud.publish(topic, payload, qos=1)
            await sim.wait_session()
            samples.append((time.perf_counter() - start) * 1000)
            sim.cancel()  # the customer presses cancel: SESSION COMPLETE, ready for the next run
            await sim.wait_no_session()
        await asyncio.sleep(poll_interval * 2)  # let the reader settle back to enabled
    report(samples, poll_interval)


def report(samples: list[float], poll_interval: float) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(
        f"authorized -> BEGIN SESSION on the bus, poll every {poll_interval * 1000:.0f} ms, "
        f"{len(samples)} runs: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"min {ordered[0]:.1f} ms, max {ordered[-1]:.1f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    async with broker() as (url, description):
        print(f"edge agent benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs")
        print(f"broker: {description}")
        for index, poll_interval in enumerate(args.poll_intervals):
            # The idle figure is asked for at a 200 ms poll; measure it once, on the first.
            await measure(url, poll_interval, args.runs, args.idle_seconds if index == 0 else 0)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--poll-intervals",
        type=lambda text: [float(part) for part in text.split(",")],
        default=[0.2, 0.02],
        help="VMC poll intervals in seconds, comma-separated (default 0.2,0.02)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
