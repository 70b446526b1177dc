"""Rate limits on the customer routes: the pure token buckets, then the app over HTTP.

Pure tests step a float; HTTP tests step the app's clock (``ManualClock``). Nothing sleeps.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from flow_support import (
    Cloud,
    cloud_settings,
    running_cloud,
    scan,
    seed_machine,
    sqlite_url,
    vends_of,
    wait_for_state,
)
from hypothesis import given
from hypothesis import strategies as st

from vendgate.cloud.customer import CustomerLimits, RateLimited
from vendgate.cloud.ratelimit import Rate, TokenBuckets
from vendgate.cloud.settings import CloudSettings, RateLimitSettings, TimingSettings
from vendgate.cloud.vippssim import VippsSimulator
from vendgate.protocol import ManualClock

# -- the pure limiter ---------------------------------------------------------------------------

rates = st.builds(
    Rate,
    burst=st.integers(min_value=1, max_value=20),
    per_minute=st.floats(min_value=0.5, max_value=600, allow_nan=False),
)
instants = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(rates, instants)
def test_a_fresh_key_gets_exactly_its_burst_at_once(rate: Rate, now: float) -> None:
    buckets = TokenBuckets(rate)
    verdicts = [buckets.take("m1", now) for _ in range(rate.burst + 3)]
    assert [v.allowed for v in verdicts] == [True] * rate.burst + [False] * 3
    denied = verdicts[-1]
    assert denied.retry_after == pytest.approx(60 / rate.per_minute)


@given(rates, instants, st.floats(min_value=0.01, max_value=0.99))
def test_an_empty_bucket_refills_after_retry_after_and_not_before(
    rate: Rate, now: float, early: float
) -> None:
    buckets = TokenBuckets(rate)
    for _ in range(rate.burst):
        assert buckets.take("m1", now).allowed
    wait = buckets.take("m1", now).retry_after
    assert wait > 0
    assert not buckets.take("m1", now + wait * early).allowed
    assert buckets.take("m1", now + wait).allowed
    assert not buckets.take("m1", now + wait).allowed  # that was the only token earned


def test_refill_with_the_default_scan_rate() -> None:
    settings = RateLimitSettings()
    buckets = TokenBuckets(Rate(settings.scan_burst, settings.scan_per_minute))
    assert all(buckets.take("m1", 0.0).allowed for _ in range(5))
    assert buckets.take("m1", 0.0).retry_after == pytest.approx(6.0)
    assert not buckets.take("m1", 5.9).allowed
    assert buckets.take("m1", 6.0).allowed
    assert buckets.tokens("m1", 6.0 + 600) == 5  # never more than the burst


@given(
    rates,
    st.lists(st.floats(min_value=0, max_value=120, allow_nan=False), min_size=1, max_size=80),
)
def test_no_window_admits_more_than_burst_plus_refill(rate: Rate, gaps: list[float]) -> None:
    buckets = TokenBuckets(rate)
    now, admitted_at = 0.0, []
    for gap in gaps:
        now += gap
        if buckets.take("m1", now).allowed:
            admitted_at.append(now)
    for i, start in enumerate(admitted_at):
        for j in range(i, len(admitted_at)):
            window = admitted_at[j] - start
            assert j - i + 1 <= rate.burst + rate.refill(window) + 1e-6


@given(rates, instants)
def test_keys_do_not_share_a_bucket(rate: Rate, now: float) -> None:
    buckets = TokenBuckets(rate)
    while buckets.take("m1", now).allowed:
        pass
    assert [buckets.take("m2", now).allowed for _ in range(rate.burst)] == [True] * rate.burst
    assert not buckets.take("m1", now).allowed


@given(
    st.integers(min_value=1, max_value=8),
    st.lists(st.sampled_from([f"m{i}" for i in range(20)]), max_size=100),
)
def test_memory_is_bounded_and_forgetting_only_forgives(max_keys: int, keys: list[str]) -> None:
    buckets = TokenBuckets(Rate(burst=1, per_minute=1), max_keys=max_keys)
    for key in keys:
        buckets.take(key, 0.0)
        assert len(buckets) <= max_keys
        assert key in buckets  # the key just used is the last one dropped
    forgotten = [f"m{i}" for i in range(20) if f"m{i}" not in buckets]
    for key in forgotten:
        assert buckets.tokens(key, 0.0) == 1  # a full bucket again


def test_the_least_recently_used_key_is_dropped_first() -> None:
    buckets = TokenBuckets(Rate(burst=1, per_minute=1), max_keys=2)
    buckets.take("a", 0.0)
    buckets.take("b", 0.0)
    buckets.take("a", 0.0)  # a is now the most recent
    buckets.take("c", 0.0)
    assert ("a" in buckets, "b" in buckets, "c" in buckets) == (True, False, True)


@given(rates, st.floats(min_value=0.001, max_value=1e5, allow_nan=False))
def test_a_clock_that_goes_back_earns_nothing(rate: Rate, back: float) -> None:
    buckets = TokenBuckets(rate)
    while buckets.take("m1", 1e6).allowed:
        pass
    assert not buckets.take("m1", 1e6 - back).allowed
    assert buckets.tokens("m1", 1e6 - back) < 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: Rate(burst=0, per_minute=1),
        lambda: Rate(burst=1, per_minute=0),
        lambda: TokenBuckets(Rate(burst=1, per_minute=1), max_keys=0),
    ],
)
def test_nonsense_limits_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


# -- settings -----------------------------------------------------------------------------------


def test_rate_limit_settings_from_the_environment() -> None:
    assert CloudSettings.from_env({}).rate_limits == RateLimitSettings()
    settings = CloudSettings.from_env(
        {
            "VENDGATE_SCAN_RATE_BURST": "2",
            "VENDGATE_SCAN_RATE_PER_MINUTE": "0.5",
            "VENDGATE_STATUS_RATE_BURST": "0",
            "VENDGATE_STATUS_RATE_PER_MINUTE": "90",
            "VENDGATE_RATE_LIMIT_MAX_KEYS": "50",
        }
    ).rate_limits
    assert settings == RateLimitSettings(
        scan_burst=2, scan_per_minute=0.5, status_burst=0, status_per_minute=90, max_keys=50
    )
    limits = CustomerLimits.from_settings(settings)
    assert limits.scans is not None
    assert limits.scans.rate == Rate(2, 0.5)
    assert limits.scans.max_keys == 50
    assert limits.status is None  # burst 0: off


def test_default_status_limit_outpaces_the_pages_polling() -> None:
    from vendgate.cloud.customer import POLL_MS

    settings = RateLimitSettings()
    assert settings.status_per_minute >= 10 * 60_000 / POLL_MS


# -- over HTTP ----------------------------------------------------------------------------------

SLOW_POLL = TimingSettings(poll_first=3600, poll_interval=3600, reconcile_interval=0.05)
BURST = 3
PER_MINUTE = 1.0  # one scan a minute after the burst: Retry-After is 60


def payment_count(sim: VippsSimulator) -> int:
    return len(sim.payments._payments)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@contextlib.asynccontextmanager
async def started_cloud(
    tmp_path: Path, clock: ManualClock, limits: RateLimitSettings
) -> AsyncIterator[Cloud]:
    settings = cloud_settings(sqlite_url(tmp_path), timing=SLOW_POLL, rate_limits=limits)
    async with running_cloud(settings, clock=clock) as running:
        await seed_machine(running.parts, "m1", online=True)
        await seed_machine(running.parts, "m2", online=True)
        yield running


@pytest.fixture
async def cloud(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Cloud]:
    limits = RateLimitSettings(
        scan_burst=BURST, scan_per_minute=PER_MINUTE, status_burst=4, status_per_minute=60
    )
    async with started_cloud(tmp_path, clock, limits) as running:
        yield running


def customer_limits(cloud: Cloud) -> CustomerLimits:
    limits: CustomerLimits = cloud.parts.customers.limits
    return limits


async def scan_and_abort(cloud: Cloud, machine_id: str) -> None:
    """A scan that starts a payment the customer then aborts: the machine is idle again."""
    response = await scan(cloud, machine_id)
    assert response.status_code == 302, response.text
    vend = (await vends_of(cloud.parts, machine_id))[-1]
    cloud.sim.payments.reject(cloud.sim.payments.find(vend.id))
    await cloud.sim.webhooks_idle()
    await wait_for_state(cloud.parts, vend.id, "closed")


def assert_rate_limited_page(response: httpx.Response) -> int:
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-state="rate_limited"' in response.text
    retry_after = response.headers["retry-after"]
    assert re.fullmatch(r"[1-9][0-9]*", retry_after)
    return int(retry_after)


async def test_scans_past_the_burst_are_429_and_create_no_payment(
    cloud: Cloud, clock: ManualClock
) -> None:
    for _ in range(BURST):
        await scan_and_abort(cloud, "m1")
    refused = await scan(cloud, "m1")  # the machine is idle: only the limit refuses this
    retry_after = assert_rate_limited_page(refused)
    assert retry_after == math.ceil(60 / PER_MINUTE)
    assert "Machine m1" in refused.text
    assert "No payment was made." in refused.text
    assert len(await vends_of(cloud.parts, "m1")) == BURST  # no session opened
    assert payment_count(cloud.sim) == BURST  # no payment created
    # Another machine has its own bucket.
    assert (await scan(cloud, "m2")).status_code == 302
    # Retry-After is honest: just before it, still refused; at it, welcome again.
    clock.advance(retry_after - 1)
    assert_rate_limited_page(await scan(cloud, "m1"))
    clock.advance(1)
    assert (await scan(cloud, "m1")).status_code == 302
    assert payment_count(cloud.sim) == BURST + 2


async def test_refused_scans_of_a_busy_machine_count_too(cloud: Cloud) -> None:
    assert (await scan(cloud, "m1")).status_code == 302
    answers = [(await scan(cloud, "m1")).status_code for _ in range(BURST)]
    assert answers == [409] * (BURST - 1) + [429]
    assert payment_count(cloud.sim) == 1


async def test_unknown_machines_stay_404_and_leave_no_bucket(cloud: Cloud) -> None:
    for n in range(BURST * 3):
        response = await scan(cloud, f"nope-{n % 2}")
        assert response.status_code == 404
    scans = customer_limits(cloud).scans
    assert scans is not None
    assert len(scans) == 0
    assert payment_count(cloud.sim) == 0


async def test_a_scan_limit_of_zero_burst_is_off(tmp_path: Path, clock: ManualClock) -> None:
    async with started_cloud(tmp_path, clock, RateLimitSettings(scan_burst=0)) as cloud:
        for _ in range(RateLimitSettings().scan_burst + 2):
            await scan_and_abort(cloud, "m1")
        assert payment_count(cloud.sim) == RateLimitSettings().scan_burst + 2


async def status_token(cloud: Cloud, machine_id: str) -> str:
    assert (await scan(cloud, machine_id)).status_code == 302
    return (await vends_of(cloud.parts, machine_id))[-1].status_token


async def test_a_status_flood_is_limited_per_token(cloud: Cloud, clock: ManualClock) -> None:
    token, other = await status_token(cloud, "m1"), await status_token(cloud, "m2")
    polls = [await cloud.http.get(f"/s/{token}/state") for _ in range(4)]
    assert [p.status_code for p in polls] == [200] * 4
    flood = await cloud.http.get(f"/s/{token}/state")
    assert flood.status_code == 429
    assert flood.headers["content-type"].startswith("application/problem+json")
    assert flood.json()["status"] == 429
    assert flood.headers["retry-after"] == "1"
    page = await cloud.http.get(f"/s/{token}")
    assert_rate_limited_page(page)
    assert "No payment was made." not in page.text  # it may well have been
    assert (await cloud.http.get(f"/s/{other}/state")).status_code == 200
    clock.advance(1)
    assert (await cloud.http.get(f"/s/{token}/state")).json()["state"] == "waiting"


async def test_a_page_polling_every_second_is_never_limited(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with started_cloud(tmp_path, clock, RateLimitSettings()) as cloud:
        token = await status_token(cloud, "m1")
        assert (await cloud.http.get(f"/s/{token}")).status_code == 200
        for _ in range(90):
            clock.advance(1)
            assert (await cloud.http.get(f"/s/{token}/state")).status_code == 200


async def test_a_client_polling_ten_times_a_second_is_never_limited(
    tmp_path: Path, clock: ManualClock
) -> None:
    """The demo's customers poll every 0.1 s: faster than the page, still welcome."""
    async with started_cloud(tmp_path, clock, RateLimitSettings()) as cloud:
        token = await status_token(cloud, "m1")
        for _ in range(RateLimitSettings().status_burst * 3):
            clock.advance(0.1)
            assert (await cloud.http.get(f"/s/{token}/state")).status_code == 200
        flood = [await cloud.http.get(f"/s/{token}/state") for _ in range(70)]
        assert 429 in [r.status_code for r in flood]  # without the clock moving: a flood


async def test_overlong_tokens_are_404_without_a_bucket(cloud: Cloud) -> None:
    response = await cloud.http.get(f"/s/{'x' * 500}/state")
    assert response.status_code == 404
    status = customer_limits(cloud).status
    assert status is not None
    assert len(status) == 0


def test_refill_is_exact_on_wall_clock_times() -> None:
    """Float Unix timestamps are only good to about 0.2 µs; the buckets must not care."""
    from datetime import UTC, datetime, timedelta

    from vendgate.cloud.db import Machine

    limits = CustomerLimits.from_settings(RateLimitSettings(scan_burst=1, scan_per_minute=600))
    machine = Machine(id="m1", name="Lobby")
    later = datetime(2031, 5, 17, 12, 0, 0, 987_654, tzinfo=UTC)
    limits.admit_scan(machine, later)
    for _ in range(500):  # one scan every 0.1 s, exactly when the next token is earned
        with pytest.raises(RateLimited) as refused:
            limits.admit_scan(machine, later)
        assert refused.value.retry_after == 1
        later += timedelta(seconds=0.1)
        limits.admit_scan(machine, later)
