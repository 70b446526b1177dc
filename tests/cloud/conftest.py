"""Fixtures for the Vipps client and simulator tests: a manual clock, no real sleeping, and a
client wired to the simulator in process (``httpx.ASGITransport``); and the purchase-flow
tiers (``tier``, ``fresh_postgres``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from flow_support import sqlite_url
from flow_tiers import Tier, tier_for
from litestar import Litestar
from support.postgres import create_database, drop_database
from vipps_support import CLOCK_START, SIM_BASE_URL, WebhookReceiver

from vendgate.cloud.vipps import RetryPolicy, VippsClient, VippsSettings
from vendgate.cloud.vippssim import SimSettings, VippsSimulator, create_vipps_sim
from vendgate.protocol import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(CLOCK_START)


@pytest.fixture
def retry(clock: ManualClock) -> RetryPolicy:
    return RetryPolicy(sleep=clock.sleep)


@pytest.fixture
def sim_settings() -> SimSettings:
    return SimSettings(webhook_retry_delays=(2.0, 2.0, 60.0))


@pytest.fixture
def receiver() -> WebhookReceiver:
    return WebhookReceiver()


@pytest.fixture
async def sim_app(
    sim_settings: SimSettings, clock: ManualClock, receiver: WebhookReceiver
) -> AsyncIterator[Litestar]:
    webhook_http = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    app = create_vipps_sim(sim_settings, clock=clock, sleep=clock.sleep, webhook_http=webhook_http)
    yield app
    await app.state.sim.aclose()
    await webhook_http.aclose()


@pytest.fixture
def sim(sim_app: Litestar) -> VippsSimulator:
    simulator: VippsSimulator = sim_app.state.sim
    return simulator


@pytest.fixture
async def sim_http(sim_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim_app)
    async with httpx.AsyncClient(transport=transport, base_url=SIM_BASE_URL) as http:
        yield http


@pytest.fixture
def vipps(sim_http: httpx.AsyncClient, clock: ManualClock, retry: RetryPolicy) -> VippsClient:
    return VippsClient(VippsSettings(base_url=SIM_BASE_URL), sim_http, clock=clock, retry=retry)


# -- the purchase-flow tiers (flow_tiers.py) ---------------------------------------------------


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """A database of its own for each test (the session one is shared by everyone)."""
    name, url = create_database()
    yield url
    drop_database(name)


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test twice: on a SQLite file, and on a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    url: str = request.getfixturevalue("fresh_postgres")
    return url


@pytest.fixture
def tier(request: pytest.FixtureRequest, tmp_path: Path) -> Tier:
    return tier_for(request, tmp_path)
