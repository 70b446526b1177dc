"""The agent's fault seam: ``faults`` is called after each commit that wrote an event, before it
is published, with the documented point names; the default lets every point pass.

The whole agent runs (core, SQLite outbox, MQTT shell on the in-process amqtt broker, a fake
reader); the faults record each point with what was true at that moment: which events the
outbox had committed, and which the cloud had received. The crash test
(test_edge_processes.py) kills the process at one of these points.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from vendgate.edge import (
    FAULT_POINTS,
    EdgeAgent,
    EdgeConfig,
    SqliteStore,
    after_outbox_write,
    build_agent,
    no_faults,
)
from vendgate.protocol.mqtt import Authorized, Dispensed, Ended, Event, Started

if TYPE_CHECKING:
    from conftest import Cloud, EdgeScene, FakeCashless, MqttBroker

AgentRunning = Callable[..., AbstractAsyncContextManager[EdgeAgent]]


@pytest.fixture
def broker(on_amqtt: MqttBroker) -> MqttBroker:
    return on_amqtt


@dataclass
class Seen:
    point: str
    committed: list[str]  # wire names of the events in the outbox at that moment
    published: list[str]  # ids of the events the cloud had received at that moment
    newest_id: str | None  # the newest committed event's id


@dataclass
class RecordingFaults:
    """Faults that let every point pass and note what each one found."""

    outbox: Path
    cloud: Cloud | None = None
    seen: list[Seen] = field(default_factory=list)

    def __call__(self, point: str) -> None:
        assert self.cloud is not None
        with closing(SqliteStore(self.outbox)) as store:  # a second connection: commits only
            pending = store.load().pending
        received = [m.id for m in self.cloud.received if isinstance(m, Event)]
        names = [event.name for event in pending]
        newest = pending[-1].id if pending else None
        self.seen.append(Seen(point, names, received, newest))


def test_the_documented_points_are_one_per_outbox_event() -> None:
    assert FAULT_POINTS == (
        "after_outbox_write:evt/started",
        "after_outbox_write:evt/dispensed",
        "after_outbox_write:evt/ended",
        "after_outbox_write:evt/rejected",
    )
    assert after_outbox_write("evt/dispensed") in FAULT_POINTS
    for point in FAULT_POINTS:
        assert no_faults(point) is None


def test_an_agent_built_without_faults_uses_the_no_op(tmp_path: Path) -> None:
    flags = {"machine_id": "m1", "serial": "loop://", "data_dir": str(tmp_path)}
    agent = build_agent(EdgeConfig.load(flags, {}))
    assert agent.faults is no_faults


async def test_faults_are_called_after_each_event_commit_before_its_publish(
    scene: EdgeScene,
    agent_running: AgentRunning,
    authorized_now: Callable[..., Authorized],
) -> None:
    faults = RecordingFaults(scene.config.outbox_path)
    reader: FakeCashless = scene.reader()
    async with scene.cloud() as cloud:
        faults.cloud = cloud
        async with agent_running(scene.config, reader, faults=faults) as agent:
            assert agent.faults is faults
            await cloud.send(authorized_now("v1", 3000))
            started = await cloud.next(Started)
            reader.vend(item=12, price=2500)
            reader.end()
            dispensed = await cloud.next(Dispensed)
            ended = await cloud.next(Ended)

    names = ["evt/started", "evt/dispensed", "evt/ended"]
    assert [seen.point for seen in faults.seen] == [after_outbox_write(n) for n in names]
    for seen, event, name in zip(faults.seen, (started, dispensed, ended), names, strict=True):
        assert seen.newest_id == event.id  # committed (fsynced) when the point is reached ...
        assert seen.committed[-1] == name
        assert event.id not in seen.published  # ... and not yet published
