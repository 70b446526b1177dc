"""A scan while Vipps fails: one create attempt, "try again", and the reconciler retries.

The customer's phone waits for the scan's answer, so the scan must not go through the Vipps
client's retry policy (five attempts with back-off); it makes one attempt, bounded by
``scan_vipps_timeout``, and leaves the rest to the reconciler. The attempts are counted where
they arrive: the simulator's fault injection draws one random number per API request.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from flow_support import (
    Cloud,
    cloud_settings,
    running_cloud,
    scan,
    seed_machine,
    sqlite_url,
    vend_row,
    vends_of,
)

from vendgate.cloud.settings import TimingSettings
from vendgate.protocol import ManualClock

TIMING = TimingSettings(heartbeat_window=86_400, poll_first=3_600, retry_delay=2.0)


class CountingRandom(random.Random):
    """Counts the draws: the simulator draws once per API request while a fault is on."""

    draws = 0

    def random(self) -> float:
        self.draws += 1
        return super().random()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def cloud(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Cloud]:
    settings = cloud_settings(sqlite_url(tmp_path), timing=TIMING, run_reconciler=False)
    async with running_cloud(settings, clock=clock) as running:
        for machine_id in ("m1", "m2"):
            await seed_machine(running.parts, machine_id, online=True)
        yield running


async def test_a_scan_makes_one_create_attempt_and_the_reconciler_retries_it(
    cloud: Cloud, clock: ManualClock
) -> None:
    # A first purchase while Vipps is fine: the scan's own client holds a token from now on.
    assert (await scan(cloud, "m1")).status_code == 302
    rng = CountingRandom(7)
    cloud.sim.faults.rng, cloud.sim.faults.error_share = rng, 1.0  # every API call: a 500

    response = await scan(cloud, "m2")

    assert response.status_code == 502  # "please try again shortly"
    assert rng.draws == 1, "the scan made more than one create attempt"
    vend = (await vends_of(cloud.parts, "m2"))[-1]
    row = await vend_row(cloud.parts, vend.id)
    assert (row.state, row.failures) == ("creating", 1)

    cloud.sim.faults.error_share = 0.0  # Vipps is back
    clock.advance(TIMING.retry_delay)
    await cloud.parts.reconciler.run_once()

    row = await vend_row(cloud.parts, vend.id)
    assert row.state == "awaiting_approval"
    assert cloud.sim.payments.find(vend.id) is not None  # the same reference, created once
