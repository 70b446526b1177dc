"""The embedded tier in this event loop: the amqtt broker, the Vipps simulator and the cloud.

The broker checks every login as production's does: the cloud's own user against a password
made up for this run, and each machine against the password the cloud's operator service
(``Fleet``) issued it, read from the cloud's database (``Fleet.authenticate``); the cloud tells
it which connections to drop (``EmbeddedAccounts``). So strangers are refused here too.

Both web apps are served by uvicorn on free loopback ports (not just called in process), so
the customer's HTTP client follows real redirects from the cloud to the simulator and back,
and the simulator's signed webhooks reach the cloud over HTTP, as they would in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import uvicorn

from vendgate.broker import CLOUD_USER, EmbeddedAccounts, EmbeddedBroker
from vendgate.cloud.app import CloudParts, create_app
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

STARTUP_LIMIT_S = 30.0

# The Vipps guideline polls after 5 s, then every 2 s; the demo relies on webhooks and polls
# only as a backstop, and keeps every other interval short so a run takes seconds.
DEMO_TIMING = TimingSettings(
    heartbeat_window=120.0,
    settle_deadline=60.0,
    authorized_ttl=30.0,
    authorized_resend=1.0,
    poll_first=1.0,
    poll_interval=1.0,
    reconcile_interval=0.2,
    work_lease=5.0,
    retry_delay=0.5,
)


class DemoError(RuntimeError):
    """A part of the demo could not start."""


@dataclass(frozen=True)
class Services:
    broker: EmbeddedBroker
    sim: VippsSimulator
    sim_url: str
    cloud: CloudParts
    cloud_url: str

    @property
    def broker_url(self) -> str:
        return self.broker.url


@contextlib.asynccontextmanager
async def embedded_services(folder: Path) -> AsyncIterator[Services]:
    """Broker, simulator and cloud, running until the block ends; data in ``folder``."""
    sim_socket, cloud_socket = listening_socket(), listening_socket()
    sim_app = create_vipps_sim(SimSettings())
    cloud_password = secrets.token_urlsafe(32)
    broker = EmbeddedBroker(cloud_logins={CLOUD_USER: cloud_password})
    async with broker, served(sim_app, sim_socket, "the Vipps simulator"):
        settings = cloud_settings(
            folder, broker, cloud_password, url_of(sim_socket), url_of(cloud_socket)
        )
        cloud_app = create_app(settings, broker_accounts=EmbeddedAccounts(broker))
        async with served(cloud_app, cloud_socket, "the cloud"):
            parts: CloudParts = cloud_app.state.parts
            broker.authenticate = parts.fleet.authenticate  # the machines' logins, from now on
            yield Services(
                broker, sim_app.state.sim, url_of(sim_socket), parts, url_of(cloud_socket)
            )


def cloud_settings(
    folder: Path, broker: EmbeddedBroker, cloud_password: str, sim_url: str, public_url: str
) -> CloudSettings:
    """Explicit settings, never the environment: the demo must not reach a real Vipps."""
    assert broker.port is not None
    mqtt = MqttSettings(
        host=broker.host,
        port=broker.port,
        username=CLOUD_USER,
        password=cloud_password,
        reconnect_delay=0.5,
    )
    return CloudSettings(
        public_url=public_url,
        data_dir=folder,
        database=DatabaseSettings(url=sqlite_url(folder)),
        mqtt=mqtt,
        vipps=VippsSettings(base_url=sim_url),
        webhooks=WebhookSettings(),
        timing=DEMO_TIMING,
        # The demo's customers scan many times a minute in compressed time; a real scan is
        # one customer at a machine, so the per-machine scan limit is off here only.
        rate_limits=RateLimitSettings(scan_burst=0),
    )


async def refusal(broker: EmbeddedBroker, username: str | None, password: str | None) -> str:
    """Why the broker refused this login (its CONNACK, as the client reports it), or ""."""
    client = aiomqtt.Client(broker.host, broker.port or 0, username=username, password=password)
    try:
        async with client:
            return ""
    except aiomqtt.MqttCodeError as exc:
        return str(exc)


async def strangers_refused(broker: EmbeddedBroker, machine_id: str) -> str:
    """Try the broker as a stranger would; one line on what it said. A stranger let in is a
    broken demo (``DemoError``)."""
    tries = {"no login": (None, None), f"{machine_id} with a wrong password": (machine_id, "guess")}
    said = []
    for who, (username, password) in tries.items():
        why = await refusal(broker, username, password)
        if not why:
            raise DemoError(f"the broker let in a stranger ({who})")
        said.append(f"{who}: {why}")
    return "; ".join(said)


# -- uvicorn in this event loop -----------------------------------------------------------------


def listening_socket() -> socket.socket:
    """Bound before the apps are built: the cloud must know its own URL (returnUrl, webhooks)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # Ctrl-C belongs to the demo, which stops every part in order


@contextlib.asynccontextmanager
async def served(app: Any, sock: socket.socket, name: str) -> AsyncIterator[None]:
    """Serve ``app`` (with its lifespan) on ``sock`` until the block ends."""
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    server = _EmbeddedServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await _started(server, serving, name)
        yield
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def _started(server: uvicorn.Server, serving: asyncio.Task[None], name: str) -> None:
    async with asyncio.timeout(STARTUP_LIMIT_S):
        while not server.started:
            if serving.done():
                serving.result()  # its own error, if it raised one
                raise DemoError(f"{name} did not start (see the log above)")
            await asyncio.sleep(0.02)
