"""How a session's work is cut into transactions: the pure ``advance`` and the hint rules,
then the running cloud (a webhook that can change nothing costs no transaction; one that can
still does its job; a purchase settles with inline work and no reconciler pass needed)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flow_support import (
    COLA,
    Cloud,
    EdgeScript,
    cloud_settings,
    eventually,
    ledger,
    machine_row,
    payment_event,
    post_webhook,
    running_cloud,
    scan_and_approve,
    seed_machine,
    sqlite_url,
    wait_for_state,
    webhook_secret,
)
from flow_tiers import TIERS, Tier
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.engine.default import CACHE_MISS, NO_CACHE_KEY

from vendgate.cloud.alerts import AlertKind, alerts_of
from vendgate.cloud.db import transaction
from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vends import (
    CallVipps,
    PaymentCreated,
    PriceMode,
    Pricing,
    Snapshot,
    StepFailed,
    VendState,
    VippsOp,
    advance,
    claimable,
    hint_can_matter,
    hint_is_news,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TIMING = TimingSettings(poll_first=5, poll_interval=2)
HELD = T0 + timedelta(seconds=30)


def creating() -> Snapshot:
    """A session just opened by a scan, held by it: its create is due."""
    return Snapshot(
        id="vs-0123456789abcdef0123456789abcdef",
        machine_id="m1",
        currency="NOK",
        state=VendState.CREATING,
        reserved=3500,
        created_at=T0,
        updated_at=T0,
        due_at=T0,
        lease_until=HELD,
        pricing=Pricing(PriceMode.PLANOGRAM, {1: 3500}),
    )


def calls(decision: object) -> list[VippsOp]:
    return [c.operation for c in decision.effects if isinstance(c, CallVipps)]  # type: ignore[attr-defined]


# -- the pure rules ------------------------------------------------------------------------------


def test_advance_from_a_claim_decides_the_first_call_and_keeps_the_lease() -> None:
    decision = advance(creating(), None, T0, TIMING)
    assert calls(decision) == [VippsOp.CREATE]
    assert decision.snapshot.lease_until == HELD  # the answer comes back to the holder


def test_advance_applies_the_answer_looks_and_releases_in_one_decision() -> None:
    decision = advance(creating(), PaymentCreated("https://vipps.example/r"), T0, TIMING)
    s = decision.snapshot
    assert s.state is VendState.AWAITING_APPROVAL
    assert s.redirect_url == "https://vipps.example/r"
    assert calls(decision) == []  # the first poll is 5 s away: nothing more now
    assert s.lease_until is None  # released in the same decision
    assert s.due_at == T0 + timedelta(seconds=TIMING.poll_first)


def test_a_failed_call_releases_without_looking_again() -> None:
    decision = advance(creating(), StepFailed(VippsOp.CREATE, "timeout"), T0, TIMING)
    s = decision.snapshot
    assert s.failures == 1
    assert calls(decision) == []  # not retried at once: the back-off decides
    assert s.lease_until is None
    assert s.due_at is not None
    assert s.due_at > T0


@given(st.integers(min_value=-60, max_value=60), st.integers(min_value=-60, max_value=60))
def test_claimable_means_due_and_not_held(due_in: int, held_for: int) -> None:
    s = dataclasses.replace(
        creating(),
        due_at=T0 + timedelta(seconds=due_in),
        lease_until=T0 + timedelta(seconds=held_for),
    )
    assert claimable(s, T0) == (due_in <= 0 and held_for < 0)
    assert claimable(dataclasses.replace(s, lease_until=None), T0) == (due_in <= 0)


NAMES = ["CREATED", "AUTHORIZED", "ABORTED", "EXPIRED", "TERMINATED", "CAPTURED", "CANCELLED"]


@given(st.sampled_from(list(VendState)), st.sampled_from(NAMES))
def test_a_hint_skipped_from_memory_is_one_the_core_would_ignore(
    known: VendState, name: str
) -> None:
    """The memory may be behind (states only move forward): skipping must be right for the
    state it knows and every later one."""
    if hint_can_matter(known, name):
        return
    order = list(VendState)
    for later in order[order.index(known) :]:
        for payment_state in ("CREATED", "AUTHORIZED", None):
            assert not (hint_is_news(later, payment_state, name) and name != "CREATED")
    assert name != "AUTHORIZED"  # its amount is checked in every state: never skipped


def test_the_hints_that_still_matter() -> None:
    assert hint_can_matter(VendState.CLOSED, "AUTHORIZED")
    assert hint_can_matter(VendState.AWAITING_APPROVAL, "ABORTED")
    assert not hint_can_matter(VendState.AWAITING_APPROVAL, "CREATED")
    assert not hint_can_matter(VendState.SETTLING, "CAPTURED")
    assert hint_is_news(VendState.AWAITING_APPROVAL, "CREATED", "AUTHORIZED")
    assert not hint_is_news(VendState.AWAITING_APPROVAL, "CREATED", "CREATED")
    assert not hint_is_news(VendState.AUTHORIZED, "AUTHORIZED", "AUTHORIZED")


# -- the running cloud ---------------------------------------------------------------------------


@pytest.fixture
async def cloud(tmp_path: Path) -> AsyncIterator[Cloud]:
    settings = cloud_settings(sqlite_url(tmp_path), timing=TimingSettings(heartbeat_window=3600))
    async with running_cloud(settings) as running:
        await seed_machine(running.parts, "m1", online=True)
        yield running


@pytest.fixture
def begins(cloud: Cloud) -> Iterator[list[object]]:
    """Every transaction the app begins, as it begins it."""
    seen: list[object] = []
    engine = cloud.parts.sessions.kw["bind"].sync_engine

    def began(connection: object) -> None:
        seen.append(connection)

    event.listen(engine, "begin", began)
    yield seen
    event.remove(engine, "begin", began)


async def test_a_webhook_that_can_change_nothing_costs_no_transaction(
    cloud: Cloud, begins: list[object]
) -> None:
    vend = await scan_and_approve(cloud, "m1")
    await wait_for_state(cloud.parts, vend.id, "authorized")
    await cloud.sim.webhooks_idle()
    secret = await webhook_secret(cloud.parts)
    before = len(begins)
    answer = await post_webhook(cloud, payment_event(vend.id, "CAPTURED"), secret=secret)
    assert answer.status_code == 200
    # Not even a read of the webhook secret: the secret and the session's state are known.
    assert len(begins) == before


async def test_an_authorized_webhook_is_checked_even_past_the_approval(
    cloud: Cloud, begins: list[object]
) -> None:
    vend = await scan_and_approve(cloud, "m1")
    await wait_for_state(cloud.parts, vend.id, "authorized")
    await cloud.sim.webhooks_idle()
    secret = await webhook_secret(cloud.parts)
    before = len(begins)
    forged = payment_event(vend.id, "AUTHORIZED", amount=99_999_900)
    assert (await post_webhook(cloud, forged, secret=secret)).status_code == 200
    assert len(begins) > before
    async with transaction(cloud.parts.sessions) as db:
        found = await alerts_of(db, kind=AlertKind.PAYMENT_DISAGREES, vend_id=vend.id)
    assert len(found) == 1
    assert "99999900" in found[0].detail


@pytest.mark.parametrize("tier", TIERS, indirect=True)
async def test_a_second_purchase_compiles_no_statement(tier: Tier) -> None:
    """Every statement of a purchase comes from SQLAlchemy's compiled cache once one purchase
    ran: a statement that cannot be cached (a multi-row VALUES, say) is compiled on every
    execution, which was a tenth of the cloud's CPU under benchmarks/bench_cloud.py."""
    async with running_cloud(cloud_settings(tier.database_url, tier.mqtt)) as cloud:
        await seed_machine(cloud.parts, "m1")
        engine = cloud.parts.sessions.kw["bind"].sync_engine
        compiled: list[str] = []

        def executed(*args: Any) -> None:
            context = args[4]
            # (A driver-level string, SQLite's BEGIN IMMEDIATE, is never compiled.)
            if context.compiled is not None and context.cache_hit in (CACHE_MISS, NO_CACHE_KEY):
                compiled.append(f"{context.cache_hit}: {args[2]}")

        async with tier.edge("m1", EdgeScript.buys(COLA.price)).online():
            await eventually(lambda: machine_online(cloud), what="m1 online")
            await buy(cloud, "m1")  # the first compiles what a purchase needs
            event.listen(engine, "after_cursor_execute", executed)
            try:
                await buy(cloud, "m1")
            finally:
                event.remove(engine, "after_cursor_execute", executed)
        no_key = [line for line in compiled if line.startswith(str(NO_CACHE_KEY))]
        assert no_key == [], "statements that can never be cached:\n" + "\n".join(no_key)
        assert compiled == [], "compiled again on the second purchase:\n" + "\n".join(compiled)


async def machine_online(cloud: Cloud) -> bool:
    return (await machine_row(cloud.parts, "m1")).online


async def buy(cloud: Cloud, machine_id: str) -> None:
    vend = await scan_and_approve(cloud, machine_id)
    await wait_for_state(cloud.parts, vend.id, "closed")
    await cloud.sim.webhooks_idle()
    assert ledger(cloud.sim, vend.id).captured == COLA.price
