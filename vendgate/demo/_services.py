"""The embedded tier in this event loop: the amqtt broker, the Vipps simulator and the cloud.

Both web apps are served by uvicorn on free loopback ports (not just called in process), so
the customer's HTTP client follows real redirects from the cloud to the simulator and back,
and the simulator's signed webhooks reach the cloud over HTTP, as they would in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from vendgate.broker import EmbeddedBroker
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
    async with EmbeddedBroker() as broker, served(sim_app, sim_socket, "the Vipps simulator"):
        settings = cloud_settings(folder, broker, url_of(sim_socket), url_of(cloud_socket))
        cloud_app = create_app(settings)
        async with served(cloud_app, cloud_socket, "the cloud"):
            yield Services(
                broker,
                sim_app.state.sim,
                url_of(sim_socket),
                cloud_app.state.parts,
                url_of(cloud_socket),
            )


def cloud_settings(
    folder: Path, broker: EmbeddedBroker, sim_url: str, public_url: str
) -> CloudSettings:
    """Explicit settings, never the environment: the demo must not reach a real Vipps."""
    assert broker.port is not None
    return CloudSettings(
        public_url=public_url,
        data_dir=folder,
        database=DatabaseSettings(url=sqlite_url(folder)),
        mqtt=MqttSettings(host=broker.host, port=broker.port, reconnect_delay=0.5),
        vipps=VippsSettings(base_url=sim_url),
        webhooks=WebhookSettings(),
        timing=DEMO_TIMING,
        # The demo's customers scan many times a minute in compressed time; a real scan is
        # one customer at a machine, so the per-machine scan limit is off here only.
        rate_limits=RateLimitSettings(scan_burst=0),
    )


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
