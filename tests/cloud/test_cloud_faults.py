"""The cloud's fault seam: ``faults`` is called at each documented point, where the docs say.

A settlement runs for real (scan, approval in the simulator, the machine's events handed to the
MQTT handler, the reconciler settling against the simulator); the faults given to the app record
each point with what was true at that moment: what the simulator had seen, and what the
database had committed. The crash tests (test_flow_crash.py) kill the process at these points.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flow_support import (
    COLA,
    MAX_PRICE,
    Cloud,
    cloud_settings,
    ledger,
    ledger_names,
    mqtt_message,
    running_cloud,
    scan,
    seed_machine,
    sqlite_url,
    vends_of,
    wait_for_state,
)

from vendgate.cloud.faults import (
    AFTER_CAPTURE,
    AFTER_VIPPS_CALL_BEFORE_COMMIT,
    POINTS,
    no_faults,
)
from vendgate.cloud.settings import TimingSettings
from vendgate.cloud.vippssim import VippsSimulator
from vendgate.protocol import Money
from vendgate.protocol.mqtt import Dispensed, DispensedItem, Ended, EndReason, Started, TopicTree

TIMING = TimingSettings(
    poll_first=3600, poll_interval=3600, reconcile_interval=0.05, retry_delay=0.1
)
TREE = TopicTree()


@dataclass
class Seen:
    point: str
    simulator: list[str]  # the payment's events at Vipps (the simulator) at that moment
    captured_at_committed: bool  # the capture recorded in the database at that moment


@dataclass
class RecordingFaults:
    """Faults that let every point pass and note what each one found."""

    database: Path
    sim: VippsSimulator | None = None
    vend_id: str | None = None
    seen: list[Seen] = field(default_factory=list)

    def __call__(self, point: str) -> None:
        assert self.sim is not None
        assert self.vend_id is not None
        # A plain second connection: it sees only what the cloud committed.
        with sqlite3.connect(self.database) as db:
            row = db.execute(
                "SELECT captured_at FROM vend_sessions WHERE id = ?", (self.vend_id,)
            ).fetchone()
        names = ledger_names(self.sim, self.vend_id)
        self.seen.append(Seen(point, names, row[0] is not None))


async def buy_one_cola(cloud: Cloud) -> str:
    """Scan, approve, then the machine reports one Cola dropped and the session ended."""
    assert (await scan(cloud, "m1")).status_code == 302
    vend_id = (await vends_of(cloud.parts, "m1"))[-1].id
    cloud.sim.payments.approve(cloud.sim.payments.find(vend_id))
    await cloud.sim.webhooks_idle()
    await wait_for_state(cloud.parts, vend_id, "authorized")
    now = datetime.now(UTC)
    cola = DispensedItem(item=COLA.item, price=Money(COLA.price, "NOK"), success=True)
    events = [
        Started.create(now=now, seq=1, vend_id=vend_id, funds=Money(MAX_PRICE, "NOK")),
        Dispensed.create(
            now=now, seq=2, vend_id=vend_id, item=cola.item, price=cola.price, success=True
        ),
        Ended.create(
            now=now,
            seq=3,
            vend_id=vend_id,
            reason=EndReason.COMPLETED,
            dispensed=[cola],
            currency="NOK",
        ),
    ]
    handler = cloud.parts.handler
    for event in events:
        topic = TREE.event("m1", event.topic_name or "")
        await handler(mqtt_message(str(topic), event.encode()))
    return vend_id


def test_the_default_lets_every_point_pass() -> None:
    for point in POINTS:
        assert no_faults(point) is None


async def test_an_app_built_without_faults_uses_the_no_op_and_settles(tmp_path: Path) -> None:
    async with running_cloud(cloud_settings(sqlite_url(tmp_path), timing=TIMING)) as cloud:
        assert cloud.parts.vends.faults is no_faults
        await seed_machine(cloud.parts, "m1", online=True)
        vend_id = await buy_one_cola(cloud)
        await wait_for_state(cloud.parts, vend_id, "closed")
        assert ledger(cloud.sim, vend_id).captured == COLA.price


async def test_faults_are_called_at_each_point_of_a_settlement_in_order(tmp_path: Path) -> None:
    faults = RecordingFaults(tmp_path / "cloud.db")
    settings = cloud_settings(sqlite_url(tmp_path), timing=TIMING)
    async with running_cloud(settings, faults=faults) as cloud:
        assert cloud.parts.vends.faults is faults
        faults.sim = cloud.sim
        await seed_machine(cloud.parts, "m1", online=True)
        faults.vend_id = await buy_one_cola(cloud)
        await wait_for_state(cloud.parts, faults.vend_id, "closed")
        final = ledger_names(cloud.sim, faults.vend_id)

    assert [seen.point for seen in faults.seen] == list(POINTS)  # each once, in this order
    before_commit, after_capture = faults.seen
    assert before_commit.point == AFTER_VIPPS_CALL_BEFORE_COMMIT
    assert "CAPTURED" in before_commit.simulator  # the capture call was made ...
    assert not before_commit.captured_at_committed  # ... and nothing of it recorded yet
    assert after_capture.point == AFTER_CAPTURE
    assert after_capture.captured_at_committed  # the capture is committed ...
    assert "CANCELLED" not in after_capture.simulator  # ... and the cancel not yet made
    assert final.count("CAPTURED") == 1
    assert final.count("CANCELLED") == 1
